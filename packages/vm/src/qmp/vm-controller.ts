import type { MachineExit, WatchdogAction } from '../machine/pc-machine.js';

/** QEMU's RunState values a tsvirt VM process goes through (qapi/run-state.json); `watchdog` is paused by the watchdog's `pause` action. */
export type RunState = 'prelaunch' | 'running' | 'paused' | 'watchdog' | 'shutdown' | 'internal-error';

/** What the controller needs of a machine: `PcMachine` is one. */
export interface ControllableMachine {
  run(): Promise<MachineExit>;
  pause(): void;
  resume(): void;
  stop(): void;
  requestReset(source: string): void;
  pressPowerButton(): void;
}

/** QEMU's ShutdownCause values, as SHUTDOWN and RESET events carry them. */
export type ShutdownCause = 'host-qmp-quit' | 'host-qmp-system-reset' | 'guest-shutdown' | 'guest-reset' | 'watchdog';

export interface VmControllerOptions {
  /** Start paused, in QEMU's `prelaunch` state, until `cont` (`-S`). */
  readonly startPaused?: boolean;
  /** A reset ends the VM instead (`-no-reboot`): SHUTDOWN events then say so, not RESET. */
  readonly noReboot?: boolean;
  /** Where QMP events go (a `QmpMonitor`'s `emit`). */
  readonly emit?: (event: string, data?: Readonly<Record<string, unknown>>) => void;
}

/** A command that cannot run in the VM's state: QMP answers it with a GenericError. */
export class VmStateError extends Error {}

/**
 * The run state of one VM process across the machines it boots (a reset
 * builds a fresh machine, as `tsvirt run` does): pause and resume, resets
 * and the power button from outside, quit, and the QMP events QEMU sends for
 * each — STOP, RESUME, RESET, POWERDOWN, SHUTDOWN with `guest` and `reason`.
 */
export class VmController {
  private state: RunState;
  private machine: ControllableMachine | undefined;
  private readonly noReboot: boolean;
  private readonly emit: (event: string, data?: Readonly<Record<string, unknown>>) => void;
  /** A host reset or quit already announced: the machine's exit must not be reported as the guest's. */
  private hostRequest: 'reset' | 'quit' | undefined;
  /** The watchdog reset or powered off this boot: its exit is the watchdog's doing, not the guest's. */
  private watchdogExit = false;

  constructor(options: VmControllerOptions = {}) {
    this.state = options.startPaused === true ? 'prelaunch' : 'running';
    this.noReboot = options.noReboot ?? false;
    this.emit = options.emit ?? (() => {});
  }

  get status(): RunState {
    return this.state;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /**
   * Runs one boot of the VM (paused if the VM is paused) and reports how it
   * ended as QEMU would: SHUTDOWN for a guest power-off, RESET (or SHUTDOWN
   * with `noReboot`) for a guest reset. After `quit` it returns `stopped`
   * without running.
   */
  async run(machine: ControllableMachine): Promise<MachineExit> {
    if (this.hostRequest === 'quit') return { kind: 'stopped' };
    this.hostRequest = undefined;
    this.machine = machine;
    if (!this.running) machine.pause();
    let exit: MachineExit;
    try {
      exit = await machine.run();
    } finally {
      this.machine = undefined;
    }
    const host = this.hostRequest;
    if (host === 'reset') this.hostRequest = undefined;
    if (host !== undefined) return exit;
    const watchdog = this.watchdogExit;
    this.watchdogExit = false;
    switch (exit.kind) {
      case 'power-off':
        if (watchdog) this.shutdown(false, 'watchdog');
        else this.shutdown(true, 'guest-shutdown');
        break;
      case 'reset':
        if (this.noReboot) this.shutdown(!watchdog, watchdog ? 'watchdog' : 'guest-reset');
        else this.emit('RESET', watchdog ? { guest: false, reason: 'watchdog' } : { guest: true, reason: 'guest-reset' });
        break;
      case 'stopped':
        // Ctrl-A x on the console: QEMU's mux calls qmp_quit too.
        this.shutdown(false, 'host-qmp-quit');
        break;
      case 'internal-error':
        this.state = 'internal-error';
        break;
      default:
        break;
    }
    return exit;
  }

  /** QMP `stop`: pauses a running VM (nothing to do otherwise), STOP. */
  stop(): void {
    if (this.state !== 'running') return;
    this.state = 'paused';
    this.machine?.pause();
    this.emit('STOP');
  }

  /** QMP `cont`: resumes a paused or not yet started VM, RESUME. */
  cont(): void {
    if (this.state === 'shutdown' || this.state === 'internal-error') throw new VmStateError('Resetting the Virtual Machine is required');
    if (this.state === 'running') return;
    this.state = 'running';
    this.machine?.resume();
    this.emit('RESUME');
  }

  /** QMP `system_reset`: the machine restarts (a paused VM goes back to prelaunch, as QEMU's does). */
  systemReset(): void {
    if (this.hostRequest === 'quit') return;
    if (this.noReboot) {
      this.hostRequest = 'quit';
      this.shutdown(false, 'host-qmp-system-reset');
      this.machine?.requestReset('host-qmp-system-reset');
      return;
    }
    this.hostRequest = 'reset';
    this.emit('RESET', { guest: false, reason: 'host-qmp-system-reset' });
    if (this.state !== 'running') this.state = 'prelaunch';
    this.machine?.requestReset('host-qmp-system-reset');
  }

  /**
   * The machine's watchdog ran out and the machine took `action`: WATCHDOG,
   * then what QEMU reports for it — STOP and the `watchdog` state for
   * `pause` (`cont` resumes), and the watchdog as the cause of the reset or
   * power-off that ends this boot.
   */
  watchdogExpired(action: WatchdogAction): void {
    this.emit('WATCHDOG', { action });
    if (action === 'reset' || action === 'poweroff') this.watchdogExit = true;
    if (action === 'pause' && this.state === 'running') {
      this.state = 'watchdog';
      this.emit('STOP');
    }
  }

  /** QMP `system_powerdown`: the ACPI power button; the guest decides what to do with it. */
  systemPowerdown(): void {
    this.emit('POWERDOWN');
    this.machine?.pressPowerButton();
  }

  /** QMP `quit`: SHUTDOWN, then the machine stops and the process ends. */
  quit(): void {
    if (this.hostRequest === 'quit') return;
    this.hostRequest = 'quit';
    this.shutdown(false, 'host-qmp-quit');
    this.machine?.stop();
  }

  private shutdown(guest: boolean, reason: ShutdownCause): void {
    this.state = 'shutdown';
    this.emit('SHUTDOWN', { guest, reason });
  }
}
