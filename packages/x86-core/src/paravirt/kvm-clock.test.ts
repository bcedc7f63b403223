import { fc, test } from '@fast-check/vitest';
import { guestAddress } from '@tsvirt/interfaces';
import { describe, expect, it } from 'vitest';
import { Cpu } from '../cpu.js';
import { KvmFeature, parseCpuModel, QEMU64 } from '../cpuid/models.js';
import { cpuidLeaf } from '../cpuid/cpuid.js';
import { createFlatMachine } from '../testing/flat-machine.js';
import { KvmClockMsr, PvclockFlag, pvclockScale } from './kvm-clock.js';

const TIME_INFO = 0x5000;
const WALL_CLOCK = 0x6000;

/** A CPU whose TSC source is `source.value`, counting at `hz`. */
function machine(options: { hz?: number; epochMs?: number; model?: string } = {}) {
  const source = { value: 0 };
  const flat = createFlatMachine({
    bits: 32,
    model: parseCpuModel(options.model ?? 'qemu64'),
    cpuOptions: { timeStampCounter: () => source.value, timeStampFrequencyHz: options.hz ?? 1e9, timeStampEpochMs: options.epochMs ?? 0 },
  });
  return { ...flat, source };
}

/** What Linux's pvclock_clocksource_read computes from the structure and a TSC value (exact, in BigInt). */
function guestNanoseconds(cpu: Cpu, address: number, tsc: bigint): bigint {
  const memory = cpu.memory;
  const timestamp = memory.readU64(guestAddress(address + 8));
  const systemTime = memory.readU64(guestAddress(address + 16));
  const multiplier = BigInt(memory.readU32(guestAddress(address + 24)));
  const shift = (memory.readU8(guestAddress(address + 28)) << 24) >> 24;
  let delta = BigInt.asUintN(64, tsc - timestamp);
  delta = shift < 0 ? delta >> BigInt(-shift) : delta << BigInt(shift);
  return systemTime + ((delta * multiplier) >> 32n);
}

function guestTsc(cpu: Cpu): bigint {
  return BigInt(cpu.timeStampCounter());
}

describe('kvmclock', () => {
  it('CPUID presents KVM: the signature leaf, and the feature leaf the model offers', () => {
    const out = new Int32Array(4);
    cpuidLeaf(QEMU64, 0x40000000, 0, out);
    expect(out[0]).toBe(0x40000001);
    const signature = new Uint8Array(new Int32Array([out[1]!, out[2]!, out[3]!]).buffer);
    expect(new TextDecoder().decode(signature)).toBe('KVMKVMKVM\0\0\0');
    cpuidLeaf(QEMU64, 0x40000001, 0, out);
    expect(out[0]).toBe(KvmFeature.Clocksource | KvmFeature.NopIoDelay | KvmFeature.Clocksource2 | KvmFeature.ClocksourceStableBit);
    expect(out[3]).toBe(0);
    cpuidLeaf(parseCpuModel('qemu64,-kvmclock'), 0x40000001, 0, out);
    expect(out[0]).toBe(KvmFeature.NopIoDelay | KvmFeature.ClocksourceStableBit);
    // No KVM features at all: no hypervisor leaves (QEMU's kvm=off).
    const bare = parseCpuModel('qemu64,-kvmclock,-kvm-nopiodelay,-kvmclock-stable-bit');
    cpuidLeaf(bare, 0x40000000, 0, out);
    expect([...out]).toEqual([0, 0, 0, 0]);
  });

  it('publishes the system-time structure where the guest points MSR 0x4b564d01, and the guest reads the TSC source as nanoseconds', () => {
    const { cpu, memory, source } = machine();
    source.value = 123_456_789;
    expect(cpu.writeMsr(KvmClockMsr.SYSTEM_TIME_NEW, TIME_INFO | 1)).toBe(true);
    expect(cpu.readMsr(KvmClockMsr.SYSTEM_TIME_NEW)).toBe(BigInt(TIME_INFO | 1));
    expect(memory.readU32(guestAddress(TIME_INFO)) % 2).toBe(0);
    expect(memory.readU32(guestAddress(TIME_INFO + 24))).toBe(0x8000_0000);
    expect(memory.readU8(guestAddress(TIME_INFO + 28))).toBe(1);
    expect(memory.readU8(guestAddress(TIME_INFO + 29))).toBe(PvclockFlag.TscStable);
    expect(guestNanoseconds(cpu, TIME_INFO, guestTsc(cpu))).toBe(123_456_789n);
    source.value = 9_876_543_210_123;
    expect(guestNanoseconds(cpu, TIME_INFO, guestTsc(cpu))).toBe(9_876_543_210_123n);
  });

  it('keeps the time right when the guest sets the TSC, and bumps the version by two', () => {
    const { cpu, memory, source } = machine();
    source.value = 5_000_000;
    cpu.writeMsr(KvmClockMsr.SYSTEM_TIME_NEW, TIME_INFO | 1);
    const version = memory.readU32(guestAddress(TIME_INFO));
    expect(cpu.writeMsr(0x10, 42n)).toBe(true);
    expect(memory.readU32(guestAddress(TIME_INFO))).toBe(version + 2);
    source.value = 7_000_000;
    expect(guestTsc(cpu)).toBe(2_000_042n);
    expect(guestNanoseconds(cpu, TIME_INFO, guestTsc(cpu))).toBe(7_000_000n);
  });

  it('converts any TSC frequency to nanoseconds as KVM scales it', () => {
    for (const hz of [1e6, 2.5e9, 3_000_000_123, 1e11]) {
      const { cpu, source } = machine({ hz });
      cpu.writeMsr(KvmClockMsr.SYSTEM_TIME_NEW, TIME_INFO | 1);
      source.value = hz * 3; // three seconds later
      const ns = Number(guestNanoseconds(cpu, TIME_INFO, guestTsc(cpu)));
      expect(Math.abs(ns - 3e9), `${hz} Hz`).toBeLessThan(3e9 * 1e-8);
    }
  });

  test.prop([fc.integer({ min: 1_000_000, max: 100_000_000_000 }), fc.bigInt({ min: 0n, max: 1n << 40n })])('pvclockScale turns counter deltas into nanoseconds within a part in 10^8', (hz, delta) => {
    const { multiplier, shift } = pvclockScale(hz);
    expect(multiplier).toBeGreaterThan(0);
    expect(multiplier).toBeLessThan(2 ** 32);
    const shifted = shift < 0 ? delta >> BigInt(-shift) : delta << BigInt(shift);
    const ns = Number((shifted * BigInt(multiplier)) >> 32n);
    const exact = (Number(delta) * 1e9) / hz;
    expect(Math.abs(ns - exact)).toBeLessThanOrEqual(exact * 1e-8 + 2 ** Math.max(0, -shift) * (1e9 / hz) + 1);
  });

  it('answers the wall-clock MSR with the Unix time at which system time was zero', () => {
    const { cpu, memory } = machine({ epochMs: 1_700_000_000_123.5 });
    expect(cpu.writeMsr(KvmClockMsr.WALL_CLOCK_NEW, WALL_CLOCK)).toBe(true);
    expect(memory.readU32(guestAddress(WALL_CLOCK)) % 2).toBe(0);
    expect(memory.readU32(guestAddress(WALL_CLOCK + 4))).toBe(1_700_000_000);
    expect(memory.readU32(guestAddress(WALL_CLOCK + 8))).toBe(123_500_000);
  });

  it('the old MSRs (0x11, 0x12) work the same', () => {
    const { cpu, memory, source } = machine();
    source.value = 77;
    expect(cpu.writeMsr(KvmClockMsr.SYSTEM_TIME, TIME_INFO | 1)).toBe(true);
    expect(guestNanoseconds(cpu, TIME_INFO, guestTsc(cpu))).toBe(77n);
    expect(cpu.writeMsr(KvmClockMsr.WALL_CLOCK, WALL_CLOCK)).toBe(true);
    expect(memory.readU32(guestAddress(WALL_CLOCK)) % 2).toBe(0);
  });

  it('the MSRs do not exist (#GP) where CPUID does not offer kvmclock', () => {
    const { cpu, memory } = machine({ model: 'qemu64,-kvmclock' });
    for (const index of [KvmClockMsr.WALL_CLOCK, KvmClockMsr.SYSTEM_TIME, KvmClockMsr.WALL_CLOCK_NEW, KvmClockMsr.SYSTEM_TIME_NEW]) {
      expect(cpu.readMsr(index), index.toString(16)).toBeUndefined();
      expect(cpu.writeMsr(index, TIME_INFO | 1), index.toString(16)).toBe(false);
    }
    expect(memory.readU32(guestAddress(TIME_INFO))).toBe(0);
  });

  it('a disabled clock or an address outside RAM is accepted and writes nothing (as KVM ignores it)', () => {
    const { cpu, memory } = machine();
    expect(cpu.writeMsr(KvmClockMsr.SYSTEM_TIME_NEW, TIME_INFO)).toBe(true);
    expect(memory.readU32(guestAddress(TIME_INFO + 24))).toBe(0);
    for (const address of [memory.size - 16, 0xfee0_0000, 2 ** 52, 2 ** 63]) {
      expect(cpu.writeMsr(KvmClockMsr.SYSTEM_TIME_NEW, BigInt(address) | 1n), address.toString(16)).toBe(true);
      expect(cpu.writeMsr(KvmClockMsr.WALL_CLOCK_NEW, BigInt(address)), address.toString(16)).toBe(true);
    }
    cpu.kvmClock.markStopped();
  });

  it('tells the guest it was stopped (PVCLOCK_GUEST_STOPPED)', () => {
    const { cpu, memory } = machine();
    cpu.writeMsr(KvmClockMsr.SYSTEM_TIME_NEW, TIME_INFO | 1);
    cpu.kvmClock.markStopped();
    expect(memory.readU8(guestAddress(TIME_INFO + 29))).toBe(PvclockFlag.TscStable | PvclockFlag.GuestStopped);
  });

  it('is saved with the CPU and published again when the restored CPU next runs', () => {
    const first = machine();
    first.source.value = 1_000;
    first.cpu.writeMsr(KvmClockMsr.SYSTEM_TIME_NEW, TIME_INFO | 1);
    const state = first.cpu.save();
    const second = machine();
    second.cpu.restore(state);
    expect(second.cpu.readMsr(KvmClockMsr.SYSTEM_TIME_NEW)).toBe(BigInt(TIME_INFO | 1));
    expect(second.memory.readU32(guestAddress(TIME_INFO + 24))).toBe(0);
    second.source.value = 50_000;
    second.load(0, Uint8Array.of(0xf4)); // hlt
    second.cpu.setRip(0);
    second.cpu.run(1);
    expect(guestNanoseconds(second.cpu, TIME_INFO, guestTsc(second.cpu))).toBe(50_000n);
  });

  it('is off after a reset, as after INIT on KVM', () => {
    const { cpu } = machine();
    cpu.writeMsr(KvmClockMsr.SYSTEM_TIME_NEW, TIME_INFO | 1);
    cpu.reset();
    expect(cpu.readMsr(KvmClockMsr.SYSTEM_TIME_NEW)).toBe(0n);
  });
});

describe('requestExit', () => {
  it('makes run return after the instruction that asked, with the count of what retired', () => {
    const { cpu, io, load } = machine();
    // out 0x80, al ×3; hlt — the device at port 0x80 asks the CPU to return on the second write.
    load(0, Uint8Array.of(0xe6, 0x80, 0xe6, 0x80, 0xe6, 0x80, 0xf4));
    let writes = 0;
    io.register(0x80, 1, { read: () => 0xff, write: () => { if (++writes === 2) cpu.requestExit(); } }, 'kick');
    cpu.setRip(0);
    expect(cpu.run(100)).toEqual({ reason: 'exit-request', retired: 2 });
    expect(cpu.getRip()).toBe(4n);
    expect(cpu.run(100)).toEqual({ reason: 'halted', retired: 2 });
  });
});
