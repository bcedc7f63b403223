import { type CharacterBackend, type ClockMode, type Observer, type PciDevice, ignoreEvents } from '@tsvirt/interfaces';
import { GuestRam } from '@tsvirt/memory';
import { Cpu, Reg, Seg, type CpuEvent, type CpuModel, type CpuModelName, type RunResult } from '@tsvirt/x86-core';
import { VirtualClock } from '../clock/virtual-clock.js';
import { BootError } from '../errors.js';
import { defaultAcpiConfig } from '../firmware/acpi/tables.js';
import { MtrrMsr, pcMtrrSettings } from '../firmware/mtrr.js';
import { installPcFirmware } from '../firmware/pc-firmware.js';
import { loadLinux, type LinuxEntryState } from '../loaders/linux.js';
import { loadMultiboot, type MultibootEntryState } from '../loaders/multiboot.js';
import { PcLayout, pcRamRegions } from '../machine-layout.js';
import { PcPlatform } from './pc-platform.js';

export interface PcMachineOptions {
  /** Guest RAM in bytes (a multiple of 4 KiB, at least 2 MiB). */
  readonly memoryBytes: number;
  /** A bzImage or a multiboot kernel. */
  readonly kernel: Uint8Array;
  readonly initrd?: Uint8Array;
  readonly commandLine?: string;
  /** A model name, or a model with its feature switches applied (x86-core's `parseCpuModel`). */
  readonly cpuModel?: CpuModelName | CpuModel;
  /** Real time follows the host; deterministic time advances with executed instructions, so runs replay exactly. */
  readonly clockMode?: ClockMode;
  /** COM1. */
  readonly serial?: CharacterBackend;
  /** Wall-clock start for the RTC (ms since the epoch); deterministic runs default to 2000-01-01. */
  readonly startTime?: number;
  readonly events?: Observer<MachineEvent>;
  /**
   * PCI devices to plug (virtio devices, say), in slots 2, 3, … in this order,
   * as QEMU places `-device`s without an address. Devices whose requests run
   * on the host (disks) complete in host time, so a deterministic run with
   * them is not replayed exactly.
   */
  readonly pciDevices?: readonly PciDevice[];
}

/** The first slot QEMU's pc gives a `-device` (0 is the host bridge, 1 the PIIX3). */
const FIRST_DEVICE_SLOT = 2;

/** Why a machine stopped running. */
export type MachineExit =
  | { readonly kind: 'power-off' }
  | { readonly kind: 'reset'; readonly source: string }
  /** isa-debug-exit: QEMU's exit status `(value << 1) | 1`. */
  | { readonly kind: 'debug-exit'; readonly status: number }
  /** Every vCPU halted with interrupts off, or nothing left that could wake one. */
  | { readonly kind: 'halted' }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'internal-error'; readonly error: unknown };

export type MachineEvent = { readonly kind: 'exit'; readonly exit: MachineExit } | { readonly kind: 'cpu'; readonly event: CpuEvent };

/** Real time: the host time a vCPU runs before due timers are fired and host I/O is looked at. */
const REAL_TIME_SLICE_NS = 1_000_000;
/** Real time: bounds of a slice's instruction budget, and the first guess of the instruction rate (per ns). */
const MIN_BUDGET = 1_000;
const MAX_BUDGET = 1_000_000;
const INITIAL_INSTRUCTIONS_PER_NS = 0.02;
/** Real time: a gap in host time this long between two slices means the host stopped the VM (see `noticeStall`). */
const STALL_NS = 1e9;
/** Deterministic: instructions between returns to the event loop (timers fire exactly at their deadlines regardless). */
const DETERMINISTIC_SLICE = 200_000;
/** Deterministic time: one nanosecond per instruction (a 1 GHz guest); the TSC counts at the same rate. */
const NANOSECONDS_PER_INSTRUCTION = 1;
const TSC_HZ = 1e9;
const DETERMINISTIC_EPOCH = Date.UTC(2000, 0, 1);
/** Real-time idle: sleep at most this long, so host input is noticed. */
const MAX_IDLE_MS = 10;

/**
 * QEMU's `pc` machine with one vCPU, booting a kernel directly (as `-kernel`
 * does): the platform, firmware tables, the loaded kernel, and the run loop
 * of DESIGN.md — the vCPU runs in slices and returns to the event loop in
 * between, where timers fire and I/O completes.
 */
export class PcMachine {
  readonly memory: GuestRam;
  readonly clock: VirtualClock;
  readonly platform: PcPlatform;
  readonly cpu: Cpu;
  private exit: MachineExit | undefined;
  private readonly events: Observer<MachineEvent>;
  /** Real time: the measured instruction rate (per host ns), which sizes a slice's instruction budget. */
  private instructionsPerNanosecond = INITIAL_INSTRUCTIONS_PER_NS;
  /** Real time: when the machine expected to run again (the end of the last slice, or of an idle sleep). */
  private resumeBy = 0;

  constructor(options: PcMachineOptions) {
    const mode = options.clockMode ?? 'realtime';
    this.events = options.events ?? ignoreEvents;
    const regions = pcRamRegions(options.memoryBytes);
    this.memory = new GuestRam({ regions });
    this.clock = new VirtualClock({
      mode,
      executedNanoseconds: () => (this.cpu === undefined ? 0 : this.cpu.instructionCount * NANOSECONDS_PER_INSTRUCTION),
      onKick: () => this.cpu.requestExit(),
    });
    const startTime = options.startTime ?? (mode === 'deterministic' ? DETERMINISTIC_EPOCH : Date.now());
    const ramBelow4G = regions.filter((region) => region.start < PcLayout.fourGiB).reduce((end, region) => Math.max(end, region.start + region.size), 0);
    this.platform = new PcPlatform({
      memory: this.memory,
      clock: this.clock,
      ramBelow4G,
      ramAbove4G: options.memoryBytes > ramBelow4G ? options.memoryBytes - ramBelow4G : 0,
      serial: options.serial,
      startTime,
      tscFrequencyHz: TSC_HZ,
      onReset: (source) => this.finish({ kind: 'reset', source }),
      onPowerOff: () => this.finish({ kind: 'power-off' }),
      onDebugExit: (status) => this.finish({ kind: 'debug-exit', status }),
    });
    this.cpu = new Cpu({
      memory: this.memory,
      io: this.platform.io,
      mmio: this.platform.mmio,
      interrupts: this.platform.localApics[0],
      floatingPointError: this.platform.floatingPointError,
      model: options.cpuModel ?? 'qemu64',
      timeStampCounter: mode === 'deterministic' ? undefined : () => this.clock.now() * (TSC_HZ / 1e9),
      timeStampFrequencyHz: TSC_HZ,
      // Virtual time 0 is `startTime` for the RTC; kvmclock's wall clock says the same.
      timeStampEpochMs: startTime,
      events: (event) => this.events({ kind: 'cpu', event }),
    });
    this.platform.attachProcessor(0, this.cpu);
    (options.pciDevices ?? []).forEach((device, index) => {
      if (FIRST_DEVICE_SLOT + index > 31) throw new BootError(`${options.pciDevices!.length} PCI devices do not fit in the 30 free slots`);
      this.platform.pciBus.plug(device, FIRST_DEVICE_SLOT + index);
    });
    this.programMtrrs(ramBelow4G);

    const firmware = installPcFirmware(this.memory, regions, defaultAcpiConfig);
    const isBzImage = options.kernel.length > 0x206 && new DataView(options.kernel.buffer, options.kernel.byteOffset).getUint32(0x202, true) === 0x5372_6448;
    if (isBzImage) {
      const plan = loadLinux(this.memory, {
        kernel: options.kernel,
        initrd: options.initrd,
        commandLine: options.commandLine,
        e820: firmware.e820,
        lowRamEnd: ramBelow4G,
        acpiRsdp: firmware.acpiRsdp,
      });
      this.enterLinux(plan.entry);
    } else {
      if (options.initrd !== undefined) throw new BootError('an initrd is for Linux bzImage kernels; a multiboot kernel takes modules');
      this.enterMultiboot(loadMultiboot(this.memory, { kernel: options.kernel, commandLine: options.commandLine, e820: firmware.e820 }));
    }
  }

  /**
   * Runs until the guest powers off, resets, exits through isa-debug-exit,
   * halts for good, or `stop` is called.
   *
   * Real time: each slice runs the vCPU for at most ~1 ms of host time, and
   * never past the next timer's deadline, then fires the due timers and lets
   * host I/O in. The instruction budget comes from the measured instruction
   * rate; a guest that reads any clock (RDTSC, a timer register) after the
   * slice's end is stopped there, so spin loops cannot stretch a slice.
   * Deterministic: slices end exactly at timer deadlines, counted in
   * instructions, so interrupts arrive at the same instruction on every run.
   */
  async run(): Promise<MachineExit> {
    const deterministic = this.clock.mode === 'deterministic';
    this.clock.resume();
    this.resumeBy = this.clock.now();
    let sinceYield = 0;
    try {
      while (this.exit === undefined) {
        const result = deterministic ? this.runDeterministicSlice() : this.runRealTimeSlice();
        sinceYield += result.retired;
        if (result.reason === 'internal-error') this.finish({ kind: 'internal-error', error: result.error });
        else if (result.reason === 'shutdown') this.finish({ kind: 'reset', source: 'triple fault' });
        else if (result.reason === 'halted' || result.reason === 'wait-for-sipi') await this.idle(deterministic);
        // Let host I/O (console input, sockets, disk completions) run between slices.
        if (this.exit === undefined && (!deterministic || sinceYield >= DETERMINISTIC_SLICE)) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    } finally {
      this.clock.pause();
    }
    const exit = this.exit;
    this.events({ kind: 'exit', exit });
    return exit;
  }

  private runRealTimeSlice(): RunResult {
    const clock = this.clock;
    clock.runDue();
    const start = clock.now();
    this.noticeStall(start);
    const deadline = clock.nextDeadline() ?? Number.POSITIVE_INFINITY;
    const end = Math.min(start + REAL_TIME_SLICE_NS, Math.max(deadline, start));
    const budget = Math.min(MAX_BUDGET, Math.max(MIN_BUDGET, Math.ceil((end - start) * this.instructionsPerNanosecond)));
    clock.kickAt(end);
    const result = this.cpu.run(budget);
    clock.kickAt(Number.POSITIVE_INFINITY);
    const finish = clock.now();
    // A slow instruction mix or a busy host lowers the rate, and with it the next budget.
    if (result.retired >= MIN_BUDGET && finish > start) this.instructionsPerNanosecond = 0.75 * this.instructionsPerNanosecond + 0.25 * (result.retired / (finish - start));
    this.resumeBy = finish;
    clock.runDue();
    return result;
  }

  private runDeterministicSlice(): RunResult {
    const clock = this.clock;
    const deadline = clock.nextDeadline();
    const now = this.cpu.instructionCount * NANOSECONDS_PER_INSTRUCTION;
    const budget = deadline === undefined ? DETERMINISTIC_SLICE : Math.min(DETERMINISTIC_SLICE, Math.max(1, Math.ceil((deadline - now) / NANOSECONDS_PER_INSTRUCTION)));
    const result = this.cpu.run(budget);
    clock.advanceTo(this.cpu.instructionCount * NANOSECONDS_PER_INSTRUCTION);
    return result;
  }

  /**
   * Real time: the host stopped this process (SIGSTOP, a suspended laptop, a
   * long reschedule) when virtual time is far past the moment the machine
   * expected to run again. kvmclock then tells the guest (PVCLOCK_GUEST_STOPPED), which
   * touches its soft-lockup, RCU-stall and clocksource watchdogs instead of
   * reporting the gap, as QEMU tells a KVM guest after resuming it.
   */
  private noticeStall(now: number): void {
    if (now - this.resumeBy >= STALL_NS) this.cpu.kvmClock.markStopped();
  }

  /** Asks a running machine to stop; it does after the instruction running now. */
  stop(): void {
    this.finish({ kind: 'stopped' });
  }

  private finish(exit: MachineExit): void {
    this.exit ??= exit;
    // A power-off or reset from a device access ends the slice at that instruction.
    this.cpu.requestExit();
  }

  /** The vCPU is halted: move time to the next timer (deterministic) or sleep until it (real time). */
  private async idle(deterministic: boolean): Promise<void> {
    const deadline = this.clock.nextDeadline();
    if (deterministic) {
      if (deadline === undefined) {
        this.finish({ kind: 'halted' });
        return;
      }
      // Skip the idle time: the instruction counter moves as if the CPU had spun until the deadline.
      const target = Math.max(deadline, this.clock.now());
      this.cpu.instructionCount = Math.max(this.cpu.instructionCount, Math.ceil(target / NANOSECONDS_PER_INSTRUCTION));
      this.clock.advanceTo(target);
      return;
    }
    const waitMs = deadline === undefined ? MAX_IDLE_MS : Math.min(MAX_IDLE_MS, Math.max(0, (deadline - this.clock.now()) / 1e6));
    this.resumeBy = this.clock.now() + waitMs * 1e6;
    await new Promise<void>((resolve) => setTimeout(resolve, waitMs));
    this.clock.runDue();
  }

  /** What SeaBIOS does before QEMU's `-kernel` boot: MTRRs on, RAM write-back, the PCI hole uncached. */
  private programMtrrs(ramBelow4G: number): void {
    const capabilities = this.cpu.readMsr(MtrrMsr.CAP);
    // A CPU model without MTRRs (or without fixed ranges) is left alone, as SeaBIOS leaves it.
    if (capabilities === undefined || (capabilities & 0x100n) === 0n || (capabilities & 0xffn) === 0n) return;
    const writes = pcMtrrSettings({
      ramBelow4G,
      uncachedFrom: PcLayout.pciHoleStart,
      physicalAddressBits: this.cpu.model.physicalAddressBits,
      variableRanges: Number(capabilities & 0xffn),
    });
    for (const { index, value } of writes) {
      if (!this.cpu.writeMsr(index, value)) throw new Error(`the CPU refused MTRR MSR 0x${index.toString(16)} = 0x${value.toString(16)}`);
    }
  }

  private flatSegments(codeAttributes: number): void {
    const data = { selector: 0x18, base: 0, limit: 0xffff_ffff, attributes: 0xc093 };
    this.cpu.setSegment(Seg.CS, { selector: 0x10, base: 0, limit: 0xffff_ffff, attributes: codeAttributes });
    for (const segment of [Seg.DS, Seg.ES, Seg.SS, Seg.FS, Seg.GS]) this.cpu.setSegment(segment, data);
  }

  private enterLinux(entry: LinuxEntryState): void {
    this.cpu.setDescriptorTable('gdt', entry.gdtBase, entry.gdtLimit);
    if (entry.mode === 'long') {
      this.cpu.setControlRegister(4, entry.cr4);
      this.cpu.setControlRegister(3, entry.cr3);
      this.cpu.setEfer(entry.efer);
    }
    this.cpu.setControlRegister(0, entry.cr0);
    // Long mode: L=1, D=0; protected mode: D=1. Both 4 GiB flat, granularity 4 KiB.
    this.flatSegments(entry.mode === 'long' ? 0xa09b : 0xc09b);
    this.cpu.setRegister(Reg.RSI, entry.bootParams);
    this.cpu.rflags = 0x2;
    this.cpu.setRip(entry.instructionPointer);
  }

  private enterMultiboot(entry: MultibootEntryState): void {
    // A flat GDT of our own is not needed by the spec (the OS must load its own), but the segment caches must be flat.
    this.cpu.setControlRegister(0, 0x11);
    this.flatSegments(0xc09b);
    this.cpu.setRegister(Reg.RAX, entry.eax);
    this.cpu.setRegister(Reg.RBX, entry.ebx);
    this.cpu.rflags = 0x2;
    this.cpu.setRip(entry.instructionPointer);
  }
}
