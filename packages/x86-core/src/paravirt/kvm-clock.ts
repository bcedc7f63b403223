import { guestAddress } from '@tsvirt/interfaces';
import type { CpuCore } from '../cpu-core.js';
import { KvmFeature } from '../cpuid/models.js';

/** kvmclock's MSRs (Linux's Documentation/virt/kvm/x86/msr.rst). */
export enum KvmClockMsr {
  WALL_CLOCK = 0x11,
  SYSTEM_TIME = 0x12,
  WALL_CLOCK_NEW = 0x4b564d00,
  SYSTEM_TIME_NEW = 0x4b564d01,
}

/** pvclock_vcpu_time_info.flags. */
export enum PvclockFlag {
  /** The TSC is synchronised and the clock needs no global monotonicity fix-up. */
  TscStable = 1 << 0,
  /** The host stopped the guest: the guest touches its lockup watchdogs and clears the bit. */
  GuestStopped = 1 << 1,
}

/** sizeof(struct pvclock_vcpu_time_info) and sizeof(struct pvclock_wall_clock). */
const TIME_INFO_BYTES = 32;
const WALL_CLOCK_BYTES = 12;
const TWO_32 = 4294967296;
const TWO_64 = TWO_32 * TWO_32;

export function isKvmClockMsr(index: number): boolean {
  return index === KvmClockMsr.WALL_CLOCK || index === KvmClockMsr.SYSTEM_TIME || index === KvmClockMsr.WALL_CLOCK_NEW || index === KvmClockMsr.SYSTEM_TIME_NEW;
}

/**
 * `ns = ((tsc_delta << shift) * mul) >> 32` for a counter at `hz`: KVM's
 * kvm_get_time_scale, so the guest derives the frequency Linux expects
 * (1 GHz gives mul 2^31, shift 1).
 */
export function pvclockScale(hz: number): { multiplier: number; shift: number } {
  let shift = 0;
  let base = Math.floor(hz);
  let scaled = 1e9;
  while (base > scaled * 2 || base >= TWO_32) {
    base = Math.floor(base / 2);
    shift--;
  }
  while (base <= scaled || scaled >= TWO_32) {
    if (scaled >= TWO_32 || base >= 0x8000_0000) scaled = Math.floor(scaled / 2);
    else base *= 2;
    shift++;
  }
  return { multiplier: Math.floor((scaled * TWO_32) / base), shift };
}

/**
 * KVM's paravirtual clock (kvmclock) for one vCPU. The guest writes the
 * guest-physical address of a `pvclock_vcpu_time_info` to the system-time
 * MSR (bit 0 enables it) and reads time as
 * `system_time + scale(tsc - tsc_timestamp)`. Here the TSC is the clock's
 * own source, so one publication stays right for good: it is written when
 * the MSR is written, when the TSC is set, and after a restore (at the next
 * `run`, when guest memory is in place). The wall-clock MSR asks for
 * `pvclock_wall_clock`: the Unix time at which system time was zero.
 *
 * The MSRs exist only where CPUID offers the feature (#GP otherwise); their
 * values live in the MSR file, so they are saved with the CPU.
 */
export class KvmClock {
  /** The structure must be written again before the guest next runs. */
  stale = false;
  private readonly bytes = new Uint8Array(TIME_INFO_BYTES);
  private readonly view = new DataView(this.bytes.buffer);

  constructor(private readonly cpu: CpuCore) {}

  /** Whether `index` is a kvmclock MSR this CPU model offers. */
  offers(index: number): boolean {
    const features = this.cpu.model.kvmFeatures;
    if (index === KvmClockMsr.WALL_CLOCK || index === KvmClockMsr.SYSTEM_TIME) return (features & KvmFeature.Clocksource) !== 0;
    return (features & KvmFeature.Clocksource2) !== 0;
  }

  /** WRMSR to one of the four MSRs (`offers(index)` checked by the caller). */
  write(index: number, low: number, high: number): void {
    this.cpu.msrs.set(index, low, high);
    if (index === KvmClockMsr.WALL_CLOCK || index === KvmClockMsr.WALL_CLOCK_NEW) this.publishWallClock(low, high);
    else this.publish();
  }

  /** Writes the system-time structure where the enabled MSR points; nothing when disabled or not in RAM (as KVM ignores such an address). */
  publish(): void {
    this.stale = false;
    const address = this.enabledAddress();
    if (address === undefined) return;
    const cpu = this.cpu;
    const memory = cpu.memory;
    const raw = cpu.timeStampSourceNow();
    const { multiplier, shift } = pvclockScale(cpu.timeStampFrequencyHz);
    const view = this.view;
    // Versions go odd while the host writes and even when done; one write here, so + 2.
    view.setUint32(0, ((memory.readU32(guestAddress(address)) | 1) + 1) >>> 0, true);
    view.setUint32(4, 0, true);
    setU64(view, 8, raw + cpu.timeStampOffset);
    setU64(view, 16, Math.floor((raw * 1e9) / cpu.timeStampFrequencyHz));
    view.setUint32(24, multiplier, true);
    view.setInt8(28, shift);
    view.setUint8(29, (cpu.model.kvmFeatures & KvmFeature.ClocksourceStableBit) !== 0 ? PvclockFlag.TscStable : 0);
    view.setUint16(30, 0, true);
    memory.write(guestAddress(address), this.bytes);
  }

  /** Tells the guest it was stopped by the host (PVCLOCK_GUEST_STOPPED), so it does not take the gap for a lockup. */
  markStopped(): void {
    const address = this.enabledAddress();
    if (address === undefined) return;
    const flags = guestAddress(address + 29);
    this.cpu.memory.writeU8(flags, this.cpu.memory.readU8(flags) | PvclockFlag.GuestStopped);
  }

  private enabledAddress(): number | undefined {
    const cpu = this.cpu;
    for (const index of [KvmClockMsr.SYSTEM_TIME_NEW, KvmClockMsr.SYSTEM_TIME]) {
      const low = cpu.msrs.lowOf(index);
      if ((low & 1) === 0) continue;
      const address = cpu.msrs.highOf(index) * TWO_32 + ((low & ~1) >>> 0);
      if (Number.isSafeInteger(address) && cpu.memory.isRam(guestAddress(address), TIME_INFO_BYTES)) return address;
    }
    return undefined;
  }

  private publishWallClock(low: number, high: number): void {
    const address = (high >>> 0) * TWO_32 + (low >>> 0);
    const memory = this.cpu.memory;
    if (!Number.isSafeInteger(address) || !memory.isRam(guestAddress(address), WALL_CLOCK_BYTES)) return;
    const epochMs = this.cpu.timeStampEpochMs;
    const bytes = new Uint8Array(WALL_CLOCK_BYTES);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, ((memory.readU32(guestAddress(address)) | 1) + 1) >>> 0, true);
    view.setUint32(4, Math.floor(epochMs / 1000) >>> 0, true);
    view.setUint32(8, Math.round((epochMs - Math.floor(epochMs / 1000) * 1000) * 1e6) % 1e9, true);
    memory.write(guestAddress(address), bytes);
  }
}

/** A 64-bit field from a number, modulo 2^64 (a TSC written negative wraps as on hardware). */
function setU64(view: DataView, offset: number, value: number): void {
  const remainder = Math.floor(value) % TWO_64;
  // Adding 2^64 to a non-negative double would round it to a multiple of 4096.
  const wrapped = remainder < 0 ? remainder + TWO_64 : remainder;
  view.setUint32(offset, wrapped % TWO_32, true);
  view.setUint32(offset + 4, Math.floor(wrapped / TWO_32), true);
}
