import { type CharacterBackend, type ClockMode, type Observer, type PciDevice, ignoreEvents } from '@tsvirt/interfaces';
import { I6300esb, IB700_BASE, IB700_LENGTH, Ib700 } from '@tsvirt/devices-emulated';
import { GuestRam } from '@tsvirt/memory';
import { Cpu, Reg, Seg, type CpuEvent, type CpuModel, type CpuModelName, type RunResult } from '@tsvirt/x86-core';
import { VirtualClock } from '../clock/virtual-clock.js';
import { BootError } from '../errors.js';
import { defaultAcpiConfig } from '../firmware/acpi/tables.js';
import { MtrrMsr, pcMtrrSettings } from '../firmware/mtrr.js';
import { installPcFirmware } from '../firmware/pc-firmware.js';
import { isBzImage } from '../loaders/bzimage.js';
import { loadLinux, type LinuxEntryState } from '../loaders/linux.js';
import { loadMultiboot, type MultibootEntryState, type MultibootModule } from '../loaders/multiboot.js';
import { installE820FwCfgFile, installMultibootFwCfgItems } from '../firmware/fw-cfg-items.js';
import { installBiosInterruptState } from '../firmware/bios-interrupts.js';
import { PcLayout, pcRamRegions } from '../machine-layout.js';
import { PcPlatform, type DebugExitPlacement, type MmioDevice } from './pc-platform.js';

export interface PcMachineOptions {
  /** Guest RAM in bytes (a multiple of 4 KiB, at least 2 MiB). */
  readonly memoryBytes: number;
  /** A bzImage or a multiboot kernel. */
  readonly kernel: Uint8Array;
  /** A bzImage's initrd; for a multiboot kernel, its one module (as QEMU's `-initrd` with one file). */
  readonly initrd?: Uint8Array;
  /** A multiboot kernel's modules (QEMU's `-initrd "FILE ARGS,FILE ARGS"`); not for a bzImage. */
  readonly modules?: readonly MultibootModule[];
  readonly commandLine?: string;
  /**
   * The kernel's file name as given on the command line: QEMU starts a
   * multiboot kernel's command line with it, so kvm-unit-tests and other
   * programs that read the command line as argv find their arguments from
   * argv[1] on. Without it a multiboot kernel gets the command line alone.
   */
  readonly kernelName?: string;
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
  /**
   * System-bus devices (virtio-mmio transports), at 0xFEB00000, 0xFEB00200, …
   * with IOAPIC inputs 16, 17, … (at most 8), described to the guest in the
   * DSDT as `LNRO0005` devices, which Linux's virtio_mmio binds.
   */
  readonly mmioDevices?: readonly MmioDevice[];
  /** isa-debug-exit's ports (QEMU's `-device isa-debug-exit,iobase=,iosize=`); by default port 0xF4, one port wide. */
  readonly debugExit?: DebugExitPlacement;
  /** Adds QEMU's pc-testdev (`-device pc-testdev`), which kvm-unit-tests uses. */
  readonly pcTestdev?: boolean;
  /**
   * A watchdog (QEMU's `-device i6300esb`, plugged after `pciDevices`, or
   * `-device ib700`) and what its expiry does (`-watchdog-action`, by default
   * `reset`). Each expiry is also a `watchdog` machine event.
   */
  readonly watchdog?: { readonly model: 'i6300esb' | 'ib700'; readonly action?: WatchdogAction };
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

export type MachineEvent =
  | { readonly kind: 'exit'; readonly exit: MachineExit }
  | { readonly kind: 'cpu'; readonly event: CpuEvent }
  /** A watchdog ran out (QMP's WATCHDOG event), and the machine took `action`. */
  | { readonly kind: 'watchdog'; readonly action: WatchdogAction };

/** QEMU's `-watchdog-action` choices: `shutdown` presses the ACPI power button, `poweroff` ends at once, `debug` only reports. */
export type WatchdogAction = 'reset' | 'shutdown' | 'poweroff' | 'pause' | 'debug' | 'none' | 'inject-nmi';
export const WATCHDOG_ACTIONS: readonly WatchdogAction[] = ['reset', 'shutdown', 'poweroff', 'pause', 'debug', 'none', 'inject-nmi'];

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
  /** Paused (QMP `stop`): the run loop waits with the clock frozen until `resume` or an exit. */
  private pauseRequested = false;
  private wakeFromPause: (() => void) | undefined;

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
      debugExit: options.debugExit,
      pcTestdev: options.pcTestdev,
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
    if (options.watchdog !== undefined) this.plugWatchdog(options.watchdog.model, options.watchdog.action ?? 'reset', FIRST_DEVICE_SLOT + (options.pciDevices?.length ?? 0));
    const virtioMmio = (options.mmioDevices ?? []).map((device, index) => this.platform.plugMmioDevice(device, index));
    this.programMtrrs(ramBelow4G);

    const firmware = installPcFirmware(this.memory, regions, { ...defaultAcpiConfig, virtioMmio });
    installE820FwCfgFile(this.platform.fwCfg, firmware.e820);
    if (isBzImage(options.kernel)) {
      if (options.modules !== undefined) throw new BootError('modules are for multiboot kernels; a Linux bzImage takes one initrd');
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
      if (options.initrd !== undefined && options.modules !== undefined) throw new BootError('a multiboot kernel takes its modules from `modules` or `initrd`, not both');
      const modules = options.modules ?? (options.initrd === undefined ? [] : [{ data: options.initrd }]);
      // Before the kernel is loaded, so a kernel placed over the vector table wins, as over a BIOS's.
      installBiosInterruptState(this.memory, this.platform.io);
      const entry = loadMultiboot(this.memory, { kernel: options.kernel, commandLine: options.commandLine, kernelName: options.kernelName, modules, e820: firmware.e820 });
      installMultibootFwCfgItems(this.platform.fwCfg, { entry: entry.instructionPointer, loadAddress: entry.loadAddress, image: entry.image, infoAddress: entry.ebx, info: entry.info });
      this.enterMultiboot(entry);
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
        if (this.pauseRequested) {
          await this.waitWhilePaused();
          continue;
        }
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

  /**
   * Pauses the guest (QMP's `stop`): the vCPU stops after the instruction
   * running now and virtual time stands still — timers do not fire, the
   * guest's clocks do not advance — until `resume`. May be called before
   * `run`, which then starts paused (QEMU's `-S`).
   */
  pause(): void {
    this.pauseRequested = true;
    this.cpu.requestExit();
  }

  /** Lets a paused guest go on from where it stopped (QMP's `cont`). */
  resume(): void {
    this.pauseRequested = false;
    this.wakeFromPause?.();
  }

  get paused(): boolean {
    return this.pauseRequested;
  }

  /** A reset from outside the guest (QMP's `system_reset`): `run` returns a reset exit with `source`, paused or not. */
  requestReset(source: string): void {
    this.finish({ kind: 'reset', source });
  }

  private plugWatchdog(model: 'i6300esb' | 'ib700', action: WatchdogAction, slot: number): void {
    const onExpire = (): void => {
      this.events({ kind: 'watchdog', action });
      switch (action) {
        case 'reset': this.finish({ kind: 'reset', source: 'watchdog' }); break;
        case 'shutdown': this.pressPowerButton(); break;
        case 'poweroff': this.finish({ kind: 'power-off' }); break;
        case 'pause': this.pause(); break;
        case 'inject-nmi': this.cpu.nmi(); break;
        case 'debug': case 'none': break;
      }
    };
    if (model === 'ib700') {
      this.platform.io.register(IB700_BASE, IB700_LENGTH, new Ib700({ clock: this.clock, onExpire }), 'ib700');
      return;
    }
    if (slot > 31) throw new BootError('the i6300esb does not fit: every PCI slot is in use');
    this.platform.pciBus.plug(new I6300esb({ clock: this.clock, onExpire }), slot);
  }

  /** Presses the ACPI power button (QMP's `system_powerdown`): PWRBTN_STS, and an SCI if the guest enabled it. */
  pressPowerButton(): void {
    this.platform.acpiPm.pressPowerButton();
  }

  private async waitWhilePaused(): Promise<void> {
    this.clock.pause();
    while (this.pauseRequested && this.exit === undefined) await new Promise<void>((resolve) => (this.wakeFromPause = resolve));
    this.wakeFromPause = undefined;
    this.clock.resume();
    this.resumeBy = this.clock.now();
    // As QEMU tells a KVM guest after `cont` (KVM_KVMCLOCK_CTRL): its watchdogs ignore the pause.
    this.cpu.kvmClock.markStopped();
  }

  private finish(exit: MachineExit): void {
    this.wakeFromPause?.();
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
