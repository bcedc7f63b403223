import { guestAddress } from '@tsvirt/interfaces';
import { MapBus } from '@tsvirt/interfaces/testing';
import { GuestRam } from '@tsvirt/memory';
import { Cpu, type CpuOptions, type RunResult } from '../cpu.js';
import { assemble } from './assemble.js';
import type { CpuModel, CpuModelName } from '../cpuid/models.js';
import { Cr0, Cr4, Efer, Seg } from '../state/registers.js';

export interface FlatMachineOptions {
  /** Code size to start in: 16 (real mode), 32 (flat protected mode) or 64 (long mode, identity-mapped). */
  readonly bits: 16 | 32 | 64;
  /** RAM size in bytes (default 16 MiB). */
  readonly memorySize?: number;
  readonly model?: CpuModelName | CpuModel;
  readonly cpuOptions?: Partial<CpuOptions>;
}

export interface FlatMachine {
  readonly cpu: Cpu;
  readonly memory: GuestRam;
  readonly io: MapBus;
  readonly mmio: MapBus;
  /** Copies `bytes` to guest-physical `address`. */
  load(address: number, bytes: Uint8Array): void;
}

/** Where `createFlatMachine` puts the 64-bit identity-mapping page tables. */
export const FLAT_PAGE_TABLES = 0x9000;

const CODE = 0x9b;
const DATA = 0x93;

/**
 * A CPU with RAM in a ready state for running test code: real mode with
 * zero segments, flat 32-bit protected mode (no paging), or 64-bit long
 * mode with the first 1 GiB identity-mapped by 2 MiB pages (page tables at
 * {@link FLAT_PAGE_TABLES}). No GDT or IDT is loaded: code that takes
 * exceptions or reloads segments must build its own.
 */
export function createFlatMachine(options: FlatMachineOptions): FlatMachine {
  const memory = new GuestRam({ size: options.memorySize ?? 16 * 1024 * 1024 });
  const io = new MapBus();
  const mmio = new MapBus();
  const cpu = new Cpu({ memory, io, mmio, model: options.model ?? 'tsvirt-max', ...options.cpuOptions });
  const load = (address: number, bytes: Uint8Array): void => memory.write(guestAddress(address), bytes);
  if (options.bits === 16) {
    for (let seg = 0; seg < 6; seg++) cpu.setSegment(seg, { selector: 0, base: 0, limit: 0xffff, attributes: seg === Seg.CS ? CODE : DATA });
    cpu.setRip(0);
    return { cpu, memory, io, mmio, load };
  }
  cpu.setControlRegister(0, Cr0.PE | Cr0.ET);
  if (options.bits === 64) {
    // PML4 → PDPT → one PD of 512 × 2 MiB pages covering 1 GiB.
    memory.writeU32(guestAddress(FLAT_PAGE_TABLES), (FLAT_PAGE_TABLES + 0x1000) | 7);
    memory.writeU32(guestAddress(FLAT_PAGE_TABLES + 0x1000), (FLAT_PAGE_TABLES + 0x2000) | 7);
    for (let i = 0; i < 512; i++) memory.writeU32(guestAddress(FLAT_PAGE_TABLES + 0x2000 + i * 8), ((i << 21) | 0x87) >>> 0);
    cpu.setControlRegister(3, FLAT_PAGE_TABLES);
    cpu.setControlRegister(4, Cr4.PAE);
    cpu.setEfer(Efer.LME | Efer.SCE | Efer.NXE);
    cpu.setControlRegister(0, Cr0.PE | Cr0.ET | Cr0.PG | Cr0.WP);
  }
  const flags = options.bits === 64 ? 0xa000 : 0xc000;
  for (let seg = 0; seg < 6; seg++) {
    cpu.setSegment(seg, { selector: seg === Seg.CS ? 0x08 : 0x10, base: 0, limit: 0xffffffff, attributes: (seg === Seg.CS ? CODE | flags : DATA | 0xc000) });
  }
  cpu.setRip(0);
  return { cpu, memory, io, mmio, load };
}

/** Where `runAssembly` loads code (the stack starts just below it). */
export const TEST_CODE_ADDRESS = 0x100000;

export interface AssemblyRun extends FlatMachine {
  readonly result: RunResult;
}

/**
 * Assembles `source` (NASM, `bits` and `org` are added), loads it at
 * {@link TEST_CODE_ADDRESS} (0x7c00 in real mode), sets RSP below it and runs
 * until HLT or `limit` instructions.
 */
export function runAssembly(
  bits: 16 | 32 | 64,
  source: string,
  options: { setup?: (machine: FlatMachine) => void; limit?: number; machine?: Partial<FlatMachineOptions> } = {},
): AssemblyRun {
  const machine = createFlatMachine({ bits, ...options.machine });
  const origin = bits === 16 ? 0x7c00 : TEST_CODE_ADDRESS;
  machine.load(origin, assemble(`bits ${bits}\norg ${origin}\n${source}\n`));
  machine.cpu.setRip(origin);
  machine.cpu.setRegister(4, bits === 16 ? 0x7000 : 0xf0000);
  options.setup?.(machine);
  const result = machine.cpu.run(options.limit ?? 100_000);
  return { ...machine, result };
}
