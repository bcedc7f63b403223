import { fc } from '@fast-check/vitest';
import { expect } from 'vitest';
import type { Decoder } from '../decoder/decoder.js';
import { CodeMode, Instruction } from '../decoder/instruction.js';
import { assemble } from './assemble.js';
import type { InterpreterCaseRunner } from './interpreter-case.js';
import { ARITHMETIC_FLAGS, Flag, type HostOracle, type OracleBits, type OracleCase, oracleCase, Reg } from './oracle/index.js';

/*
 * Shared by the general-purpose host-oracle tests: templates of assembly run
 * from random states, and the comparison of interpreter and host results with
 * the flags the table leaves undefined masked.
 */

/** An instruction sequence to run from random registers, flags and memory. */
export interface IntegerTemplate {
  readonly asm: string;
  /** Registers that must point into the memory page. */
  readonly pointers?: readonly number[];
  /** Registers kept small (counts, 0–40). */
  readonly small?: readonly number[];
  /** Registers with their own arbitrary (masks, bit-field controls, …). */
  readonly operands?: ReadonlyArray<readonly [register: number, value: (bits: OracleBits) => fc.Arbitrary<bigint>]>;
}

const smallValue = (): fc.Arbitrary<bigint> => fc.bigInt({ min: 0n, max: 40n });

/** `count` cases, each one of the templates (assembled for `bits`) from a random state. */
export function templateCases(bits: OracleBits, templates: readonly IntegerTemplate[], count: number): fc.Arbitrary<OracleCase[]> {
  const compiled = templates.map((template) => {
    const special = [...(template.small ?? []).map((register) => [register, smallValue] as const), ...(template.operands ?? [])];
    return { ...template, special, code: assemble(`bits ${bits}\n${template.asm}\n`) };
  });
  const one = fc.constantFrom(...compiled).chain((template) => {
    const pointers = template.pointers ?? [];
    return fc
      .tuple(
        oracleCase({ bits, code: template.code, pointerRegisters: pointers, freeStackPointer: !pointers.includes(Reg.rsp) }),
        fc.tuple(...template.special.map(([, value]) => value(bits))),
      )
      .map(([base, values]) => {
        const registers = [...base.registers];
        template.special.forEach(([register], index) => {
          registers[register] = values[index]!;
        });
        return { ...base, registers };
      });
  });
  return fc.array(one, { minLength: count, maxLength: count });
}

/** The flags every instruction of `code` may leave undefined, from the opcode table. */
export function undefinedFlagsOf(decoder: Decoder, code: Uint8Array, bits: OracleBits): number {
  let mask = 0;
  for (let offset = 0; offset < code.length;) {
    const instruction = decoder.decode({ byteAt: (index) => code[offset + index] ?? 0 }, bits === 64 ? CodeMode.Bits64 : CodeMode.Bits32, new Instruction());
    mask |= instruction.entry.undefinedFlags;
    offset += instruction.length;
  }
  return mask;
}

/**
 * Runs `cases` on the host and the interpreter: the same exception (and #PF
 * address), or the same registers, defined flags, RIP and memory.
 */
export async function compareWithHost(oracle: HostOracle, runner: InterpreterCaseRunner, decoder: Decoder, cases: OracleCase[]): Promise<void> {
  const results = await oracle.run(cases);
  cases.forEach((oracleCase, index) => {
    const host = results[index]!;
    const mine = runner.run(oracleCase);
    const label = `${[...oracleCase.code].map((byte) => byte.toString(16).padStart(2, '0')).join(' ')} (${oracleCase.bits}-bit) registers ${oracleCase.registers.map((value) => value.toString(16)).join(',')} flags ${(oracleCase.rflags ?? 0).toString(16)}`;
    if (host.fault !== undefined) {
      expect(mine.vector, `${label}: host raised ${host.fault.name}`).toBe(host.fault.vector);
      if (host.fault.vector === 14) expect(mine.faultAddress, label).toBe(host.fault.address);
      return;
    }
    expect(mine.vector, `${label}: interpreter raised an exception the host did not`).toBeUndefined();
    expect(mine.registers.map((value) => value.toString(16)), label).toEqual(host.registers.map((value) => value.toString(16)));
    const mask = (ARITHMETIC_FLAGS | Flag.DF) & ~undefinedFlagsOf(decoder, oracleCase.code, oracleCase.bits);
    expect((mine.rflags & mask).toString(16), label).toBe((host.rflags & mask).toString(16));
    expect(mine.rip, label).toBe(host.rip);
    expect([...mine.memory], label).toEqual([...host.memory]);
  });
}
