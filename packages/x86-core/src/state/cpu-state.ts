import { StateReader, type SavedState } from '@tsvirt/interfaces';
import type { Cpu } from '../cpu.js';
import type { FpuState } from '../fpu/fpu-state.js';
import { MXCSR_MASK, XCR0_SUPPORTED } from '../fpu/sse-state.js';
import { isStored } from '../msr/msr-file.js';

const ADDRESS = 2 ** 53 - 1;
const U32 = 0xffffffff;

export interface SegmentRecord {
  selector: number;
  base: number;
  limit: number;
  attributes: number;
}

/** Everything `Cpu.save` records (version 1). */
export interface CpuState extends SavedState {
  readonly version: 1;
  readonly low: number[];
  readonly high: number[];
  readonly rip: number;
  readonly rflags: number;
  readonly segments: SegmentRecord[];
  readonly gdt: { base: number; limit: number };
  readonly idt: { base: number; limit: number };
  readonly ldt: SegmentRecord;
  readonly tr: SegmentRecord;
  readonly cr0: number;
  readonly cr2: number;
  readonly cr3: number;
  readonly cr3High: number;
  readonly cr4: number;
  readonly efer: number;
  readonly taskPriority: number;
  readonly debug: number[];
  readonly cpl: number;
  readonly halted: boolean;
  readonly inhibitUntil: number;
  readonly nmiPending: boolean;
  readonly nmiBlocked: boolean;
  readonly instructionCount: number;
  readonly timeStampOffset: number;
  readonly apicBase: number;
  readonly msrs: Array<{ index: number; low: number; high: number }>;
  readonly shutdown: boolean;
  readonly waitingForStartup: boolean;
  readonly fpu: FpuRecord;
  readonly sse: SseRecord;
  /** PKRU (absent in older states: 0). */
  readonly pkru?: number;
}

/** XMM0–XMM15 as 64 unsigned 32-bit lanes (register * 4 + lane), MXCSR and XCR0 (absent in older states: 1). */
export interface SseRecord {
  xmm: number[];
  mxcsr: number;
  xcr0?: number;
}

/** The x87 state: registers by physical number as [signExponent, high, low] triples, the "empty" bit per register. */
export interface FpuRecord {
  registers: number[];
  emptyMask: number;
  top: number;
  control: number;
  status: number;
  instructionOffset: number;
  instructionSelector: number;
  dataOffset: number;
  dataSelector: number;
  opcode: number;
}

function saveFpu(fpu: FpuState): FpuRecord {
  const registers: number[] = [];
  let emptyMask = 0;
  for (let register = 0; register < 8; register++) {
    registers.push(fpu.signExponent[register]!, fpu.high[register]!, fpu.low[register]!);
    if (fpu.empty[register] === 1) emptyMask |= 1 << register;
  }
  return {
    registers, emptyMask, top: fpu.top, control: fpu.control, status: fpu.status, instructionOffset: fpu.instructionOffset,
    instructionSelector: fpu.instructionSelector, dataOffset: fpu.dataOffset, dataSelector: fpu.dataSelector, opcode: fpu.opcode,
  };
}

function readFpu(reader: StateReader): FpuRecord {
  const registers = reader.uintArray('registers', 24, U32, 24);
  for (let register = 0; register < 8; register++) if (registers[register * 3]! > 0xffff) reader.fail('registers', 'sign and exponent are 16 bits');
  return {
    registers,
    emptyMask: reader.uint('emptyMask', 0xff),
    top: reader.uint('top', 7),
    control: reader.uint('control', 0xffff),
    status: reader.uint('status', 0xffff),
    instructionOffset: reader.int('instructionOffset', -ADDRESS, ADDRESS),
    instructionSelector: reader.uint('instructionSelector', 0xffff),
    dataOffset: reader.int('dataOffset', -ADDRESS, ADDRESS),
    dataSelector: reader.uint('dataSelector', 0xffff),
    opcode: reader.uint('opcode', 0x7ff),
  };
}

function applyFpu(fpu: FpuState, record: FpuRecord): void {
  for (let register = 0; register < 8; register++) {
    fpu.signExponent[register] = record.registers[register * 3]!;
    fpu.high[register] = record.registers[register * 3 + 1]!;
    fpu.low[register] = record.registers[register * 3 + 2]!;
    fpu.empty[register] = (record.emptyMask >> register) & 1;
  }
  fpu.top = record.top;
  fpu.control = record.control;
  fpu.status = record.status & ~0x3800;
  fpu.instructionOffset = record.instructionOffset;
  fpu.instructionSelector = record.instructionSelector;
  fpu.dataOffset = record.dataOffset;
  fpu.dataSelector = record.dataSelector;
  fpu.opcode = record.opcode;
}

function segmentRecord(selector: number, base: number, limit: number, attributes: number): SegmentRecord {
  return { selector, base, limit, attributes };
}

export function saveCpu(cpu: Cpu): CpuState {
  const segments: SegmentRecord[] = [];
  for (let seg = 0; seg < 6; seg++) {
    segments.push(segmentRecord(cpu.segmentSelector[seg]!, cpu.segmentBase[seg]!, cpu.segmentLimit[seg]!, cpu.segmentAttributes[seg]!));
  }
  const run = cpu.runState;
  return {
    version: 1,
    low: Array.from(cpu.low.subarray(0, 16), (value) => value >>> 0),
    high: Array.from(cpu.high.subarray(0, 16), (value) => value >>> 0),
    rip: cpu.rip,
    rflags: cpu.getFlags() >>> 0,
    segments,
    gdt: { base: cpu.gdtBase, limit: cpu.gdtLimit },
    idt: { base: cpu.idtBase, limit: cpu.idtLimit },
    ldt: segmentRecord(cpu.ldtSelector, cpu.ldtBase, cpu.ldtLimit, 0x82),
    tr: segmentRecord(cpu.trSelector, cpu.trBase, cpu.trLimit, cpu.trAttributes),
    cr0: cpu.cr0 >>> 0,
    cr2: cpu.cr2,
    cr3: cpu.cr3 >>> 0,
    cr3High: cpu.cr3High >>> 0,
    cr4: cpu.cr4 >>> 0,
    efer: cpu.efer >>> 0,
    taskPriority: cpu.taskPriority,
    debug: [...cpu.debug],
    cpl: cpu.cpl,
    halted: cpu.halted,
    inhibitUntil: cpu.inhibitUntil,
    nmiPending: cpu.nmiPending,
    nmiBlocked: cpu.nmiBlocked,
    instructionCount: cpu.instructionCount,
    timeStampOffset: cpu.timeStampOffset,
    apicBase: cpu.msrs.apicBase,
    msrs: cpu.msrs.entries(),
    shutdown: run.shutdown,
    waitingForStartup: run.waitingForStartup,
    fpu: saveFpu(cpu.fpu),
    sse: { xmm: [...cpu.sse.xmm], mxcsr: cpu.sse.mxcsr, xcr0: cpu.sse.xcr0 },
    pkru: cpu.pkru >>> 0,
  };
}

function readSegment(reader: StateReader): SegmentRecord {
  return {
    selector: reader.uint('selector', 0xffff),
    base: reader.int('base', -ADDRESS, ADDRESS),
    limit: reader.uint('limit', U32),
    attributes: reader.uint('attributes', 0xffff),
  };
}

/** Validates `state` completely, then applies it (nothing changes when validation fails). */
export function restoreCpu(cpu: Cpu, state: unknown): void {
  const reader = StateReader.open(state, 'cpu', 1);
  const low = reader.uintArray('low', 16, U32, 16);
  const high = reader.uintArray('high', 16, U32, 16);
  const rip = reader.int('rip', -(2 ** 47), 2 ** 47 - 1);
  const rflags = reader.uint('rflags', 0x3fffff);
  const segments = reader.children('segments', 6).map(readSegment);
  if (segments.length !== 6) reader.fail('segments', 'expected 6 segment registers');
  const gdt = reader.child('gdt');
  const idt = reader.child('idt');
  const tables = { gdtBase: gdt.int('base', -ADDRESS, ADDRESS), gdtLimit: gdt.uint('limit', 0xffff), idtBase: idt.int('base', -ADDRESS, ADDRESS), idtLimit: idt.uint('limit', 0xffff) };
  const ldt = readSegment(reader.child('ldt'));
  const tr = readSegment(reader.child('tr'));
  const control = {
    cr0: reader.uint('cr0', U32),
    cr2: reader.int('cr2', -ADDRESS, ADDRESS),
    cr3: reader.uint('cr3', U32),
    cr3High: reader.uint('cr3High', 0xfffff),
    cr4: reader.uint('cr4', U32),
    efer: reader.uint('efer', 0xffff),
    taskPriority: reader.uint('taskPriority', 15),
  };
  const debugValues = (state as { debug?: unknown }).debug;
  if (!Array.isArray(debugValues) || debugValues.length !== 8 || !debugValues.every((value) => typeof value === 'number' && Number.isSafeInteger(value))) {
    reader.fail('debug', 'expected 8 integers');
  }
  const cpl = reader.uint('cpl', 3);
  const halted = reader.boolean('halted');
  const inhibitUntil = reader.uint('inhibitUntil', Number.MAX_SAFE_INTEGER);
  const nmiPending = reader.boolean('nmiPending');
  const nmiBlocked = reader.boolean('nmiBlocked');
  const instructionCount = reader.uint('instructionCount', Number.MAX_SAFE_INTEGER);
  const timeStampOffset = reader.int('timeStampOffset', -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const apicBase = reader.uint('apicBase', U32);
  const msrs = reader.children('msrs', 256).map((entry) => ({ index: entry.uint('index', U32), low: entry.uint('low', U32), high: entry.uint('high', U32) }));
  for (const entry of msrs) if (!isStored(entry.index)) reader.fail('msrs', `MSR 0x${entry.index.toString(16)} cannot be restored`);
  const shutdown = reader.boolean('shutdown');
  const waitingForStartup = reader.boolean('waitingForStartup');
  const fpu = readFpu(reader.child('fpu'));
  const sseReader = reader.child('sse');
  const sse = { xmm: sseReader.uintArray('xmm', 64, U32, 64), mxcsr: sseReader.uint('mxcsr', MXCSR_MASK), xcr0: sseReader.has('xcr0') ? sseReader.uint('xcr0', XCR0_SUPPORTED) : 1 };
  if ((sse.xcr0 & 1) === 0) sseReader.fail('xcr0', 'bit 0 (x87) must be set');
  const pkru = reader.has('pkru') ? reader.uint('pkru', U32) : 0;

  // Everything is valid: apply.
  for (let i = 0; i < 16; i++) {
    cpu.low[i] = low[i]! | 0;
    cpu.high[i] = high[i]! | 0;
  }
  cpu.cr0 = control.cr0 | 0;
  cpu.cr2 = control.cr2;
  cpu.cr3 = control.cr3 | 0;
  cpu.cr3High = control.cr3High;
  cpu.cr4 = control.cr4 | 0;
  cpu.efer = control.efer;
  cpu.taskPriority = control.taskPriority;
  cpu.rflags = rflags;
  cpu.cpl = cpl;
  segments.forEach((segment, seg) => cpu.setSegmentCache(seg, segment.selector, segment.base, segment.limit, segment.attributes));
  cpu.rip = rip;
  cpu.gdtBase = tables.gdtBase;
  cpu.gdtLimit = tables.gdtLimit;
  cpu.idtBase = tables.idtBase;
  cpu.idtLimit = tables.idtLimit;
  cpu.setLocalDescriptorTable(ldt.selector, ldt.base, ldt.limit);
  cpu.setTaskRegister(tr.selector, tr.base, tr.limit, tr.attributes);
  (debugValues as number[]).forEach((value, index) => { cpu.debug[index] = value; });
  cpu.updateBreakpoints();
  cpu.halted = halted;
  cpu.inhibitUntil = inhibitUntil;
  cpu.nmiPending = nmiPending;
  cpu.nmiBlocked = nmiBlocked;
  cpu.instructionCount = instructionCount;
  cpu.timeStampOffset = timeStampOffset;
  cpu.msrs.reset();
  cpu.msrs.apicBase = apicBase;
  for (const entry of msrs) cpu.msrs.restoreEntry(entry.index, entry.low, entry.high);
  // Guest memory may not be restored yet: kvmclock is published when the CPU next runs.
  cpu.kvmClock.stale = true;
  cpu.setRunState(shutdown, waitingForStartup);
  applyFpu(cpu.fpu, fpu);
  cpu.sse.xmm.set(sse.xmm);
  cpu.sse.mxcsr = sse.mxcsr;
  cpu.sse.xcr0 = sse.xcr0;
  cpu.pkru = pkru | 0;
}
