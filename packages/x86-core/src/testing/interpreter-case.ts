import { guestAddress } from '@tsvirt/interfaces';
import { GuestRam } from '@tsvirt/memory';
import { Cpu } from '../cpu.js';
import type { CpuModel, CpuModelName } from '../cpuid/models.js';
import { Cr0, Cr4, Efer, Seg } from '../state/registers.js';
import { isSseCase, ORACLE_CODE_ADDRESS, ORACLE_MEMORY_BASE, ORACLE_MEMORY_SIZE, ORACLE_XMM_SIZE, type OracleCase } from './oracle/index.js';

/** What the interpreter did with an oracle case, in the oracle's terms. */
export interface InterpreterOutcome {
  readonly registers: bigint[];
  readonly rflags: number;
  readonly rip: bigint;
  readonly memory: Uint8Array;
  /** The first exception raised, if any. */
  readonly vector: number | undefined;
  readonly faultAddress: bigint | undefined;
  /** SSE cases only (as the oracle reports them): XMM0–XMM15 (XMM8–15 zero for 32-bit cases) and MXCSR. */
  readonly xmm?: Uint8Array;
  readonly mxcsr?: number;
}

const TABLES = 0x1000;

/**
 * Runs oracle cases on the interpreter in the same address-space layout the
 * harness uses: only the memory page and the code page are mapped (4-level
 * paging), 64-bit code in long mode and 32-bit code in compatibility mode.
 */
export class InterpreterCaseRunner {
  private readonly memory = new GuestRam({ size: ORACLE_CODE_ADDRESS + 0x2000 });
  private readonly cpu: Cpu;
  private vector: number | undefined;
  private faultAddress: bigint | undefined;

  constructor(model: CpuModelName | CpuModel = 'tsvirt-max') {
    this.cpu = new Cpu({
      memory: this.memory,
      model,
      events: (event) => {
        if (event.kind === 'exception' && this.vector === undefined) {
          this.vector = event.vector;
          this.faultAddress = event.vector === 14 ? BigInt.asUintN(64, BigInt(this.cpu.cr2)) : undefined;
        }
      },
    });
    const write = (address: number, value: number): void => this.memory.writeU32(guestAddress(address), value);
    // PML4[0] → PDPT[0] → PD; PD[0x80] maps the memory page, PD[0x100] the code page.
    write(TABLES, (TABLES + 0x1000) | 7);
    write(TABLES + 0x1000, (TABLES + 0x2000) | 7);
    write(TABLES + 0x2000 + (ORACLE_MEMORY_BASE >>> 21) * 8, (TABLES + 0x3000) | 7);
    write(TABLES + 0x2000 + (ORACLE_CODE_ADDRESS >>> 21) * 8, (TABLES + 0x4000) | 7);
    write(TABLES + 0x3000 + ((ORACLE_MEMORY_BASE >>> 12) & 0x1ff) * 8, ORACLE_MEMORY_BASE | 7);
    write(TABLES + 0x4000 + ((ORACLE_CODE_ADDRESS >>> 12) & 0x1ff) * 8, ORACLE_CODE_ADDRESS | 7);
  }

  run(oracleCase: OracleCase, limit = 100_000): InterpreterOutcome {
    const cpu = this.cpu;
    const bits = oracleCase.bits;
    cpu.reset();
    // As Linux runs user code: SSE enabled with #XM for unmasked SIMD exceptions, XSAVE (x87 and SSE) where the model has it.
    const xsave = cpu.model.features.has('xsave');
    cpu.setControlRegister(4, Cr4.PAE | Cr4.OSFXSR | Cr4.OSXMMEXCPT | (xsave ? Cr4.OSXSAVE : 0));
    if (xsave) cpu.sse.xcr0 = 3;
    cpu.setControlRegister(3, TABLES);
    cpu.setEfer(Efer.LME | Efer.NXE);
    // As Linux runs user code: NE (x87 errors as #MF) and MP (WAIT honours TS).
    cpu.setControlRegister(0, Cr0.PE | Cr0.PG | Cr0.WP | Cr0.ET | Cr0.NE | Cr0.MP);
    for (let seg = 0; seg < 6; seg++) cpu.setSegment(seg, { selector: 0x10, base: 0, limit: 0xffffffff, attributes: 0xc093 });
    cpu.setSegment(Seg.CS, { selector: 0x08, base: 0, limit: 0xffffffff, attributes: bits === 64 ? 0xa09b : 0xc09b });
    const memory = new Uint8Array(ORACLE_MEMORY_SIZE);
    if (oracleCase.memory !== undefined) memory.set(oracleCase.memory);
    this.memory.write(guestAddress(ORACLE_MEMORY_BASE), memory);
    const code = new Uint8Array(ORACLE_MEMORY_SIZE);
    code.set(oracleCase.code);
    code[oracleCase.code.length] = 0xf4; // HLT after the case
    this.memory.write(guestAddress(ORACLE_CODE_ADDRESS), code);
    oracleCase.registers.forEach((value, index) => cpu.setRegister(index, bits === 64 ? value : BigInt.asUintN(32, value)));
    cpu.rflags = (oracleCase.rflags ?? 0) | 0x202;
    const sse = isSseCase(oracleCase);
    if (oracleCase.xmm !== undefined) {
      const view = new DataView(oracleCase.xmm.buffer, oracleCase.xmm.byteOffset, ORACLE_XMM_SIZE);
      for (let lane = 0; lane < 64; lane++) cpu.sse.xmm[lane] = view.getUint32(lane * 4, true);
    }
    if (oracleCase.mxcsr !== undefined) cpu.sse.mxcsr = oracleCase.mxcsr;
    cpu.setRip(ORACLE_CODE_ADDRESS);
    this.vector = undefined;
    this.faultAddress = undefined;
    const registersAtFault: bigint[] = [];
    cpu.run(limit);
    const count = bits === 64 ? 16 : 8;
    for (let index = 0; index < count; index++) {
      const value = cpu.getRegister(index);
      registersAtFault.push(bits === 64 ? value : BigInt.asUintN(32, value));
    }
    const after = new Uint8Array(oracleCase.memory?.length ?? 0);
    this.memory.read(guestAddress(ORACLE_MEMORY_BASE), after);
    let xmm: Uint8Array | undefined;
    if (sse) {
      xmm = new Uint8Array(ORACLE_XMM_SIZE);
      const view = new DataView(xmm.buffer);
      for (let lane = 0; lane < (bits === 64 ? 64 : 32); lane++) view.setUint32(lane * 4, cpu.sse.xmm[lane]!, true);
    }
    return {
      ...(sse ? { xmm, mxcsr: cpu.sse.mxcsr } : {}),
      registers: registersAtFault,
      rflags: cpu.rflags,
      // HLT has run: the case ended one byte earlier.
      rip: this.vector === undefined ? cpu.getRip() - 1n : cpu.getRip(),
      memory: after,
      vector: this.vector,
      faultAddress: this.faultAddress,
    };
  }
}
