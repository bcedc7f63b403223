import { PAGE_SIZE, StateReader, encodeStateBytes, guestAddress, type Clock, type JsonValue, type Timer } from '@tsvirt/interfaces';
import { GuestRam } from '@tsvirt/memory';
import type { MachineDescriptor, PostcopyGuard, PostcopyVm } from '../vm.js';
import { nextRandom, workloadTarget, type DirtyWorkload } from './workload.js';

export interface FakeVmOptions {
  /** Guest memory size in bytes (a multiple of 4096). */
  readonly memorySize: number;
  /** With a workload, the guest writes memory as this clock advances while it runs. */
  readonly clock?: Clock;
  readonly workload?: DirtyWorkload;
  /** Guest time between workload steps (default 1 ms). */
  readonly tickNs?: number;
  /** Seeds the workload's random numbers (default 1). */
  readonly seed?: number;
  /** Starts running (default false: created paused, as a destination is). */
  readonly running?: boolean;
  /** Overrides for the configuration descriptor. */
  readonly descriptor?: Partial<MachineDescriptor>;
}

const SERIAL_SCRATCH = 16;

/**
 * A virtual machine model for migration: GuestRam memory, a deterministic
 * dirtying workload driven by an injected clock (throttled as auto-converge
 * asks), and a small device state tree (a "cpu" holding the workload's
 * position, a timer, a serial port) that changes as the guest runs, so a
 * migrated machine continues exactly where the source stopped.
 */
export class FakeVm implements PostcopyVm {
  readonly memory: GuestRam;
  private isRunning: boolean;
  private throttle = 0;
  private readonly pageCount: number;
  private readonly timer: Timer | undefined;
  private readonly tickNs: number;
  /** Workload writes done so far. */
  writes = 0;
  private random: number;
  private carry = 0;
  private ticks = 0;
  private lastTick = 0;
  private serial: Uint8Array = new Uint8Array(SERIAL_SCRATCH);
  /** Set while this machine runs post-copy: pages it must not touch yet. */
  private guard: PostcopyGuard | undefined;
  /** Page faults taken (post-copy). */
  faults = 0;
  /** The memory-size-independent parts of the descriptor. */
  private readonly descriptorOverrides: Partial<MachineDescriptor>;

  constructor(private readonly options: FakeVmOptions) {
    this.memory = new GuestRam({ size: options.memorySize });
    this.pageCount = options.memorySize / PAGE_SIZE;
    this.tickNs = options.tickNs ?? 1_000_000;
    this.random = nextRandom(options.seed ?? 1);
    this.descriptorOverrides = options.descriptor ?? {};
    this.timer = options.clock !== undefined && options.workload !== undefined ? options.clock.createTimer(() => this.tick()) : undefined;
    this.isRunning = false;
    if (options.running ?? false) this.resume();
  }

  get running(): boolean {
    return this.isRunning;
  }

  get cpuThrottlePercentage(): number {
    return this.throttle;
  }

  pause(): void {
    this.isRunning = false;
    this.timer?.cancel();
  }

  resume(): void {
    this.isRunning = true;
    if (this.timer !== undefined) {
      this.lastTick = this.options.clock!.now();
      this.timer.arm(this.lastTick + this.tickNs);
    }
  }

  setCpuThrottle(percentage: number): void {
    if (!Number.isInteger(percentage) || percentage < 0 || percentage > 99) throw new RangeError(`throttle must be in [0, 99], got ${percentage}`);
    this.throttle = percentage;
  }

  describe(): MachineDescriptor {
    return {
      machineType: 'fake-1',
      cpuModel: 'fake-cpu',
      vcpus: 1,
      memorySize: this.options.memorySize,
      ramRegions: [{ start: 0, size: this.options.memorySize }],
      devices: ['cpu', 'timer0', 'serial0'],
      features: ['fake-feature'],
      ...this.descriptorOverrides,
    };
  }

  saveDevices(): JsonValue {
    return {
      version: 1,
      cpu: { version: 1, writes: this.writes, random: this.random, carry: this.carry },
      timer0: { version: 1, ticks: this.ticks },
      serial0: { version: 1, scratch: encodeStateBytes(this.serial) },
    };
  }

  restoreDevices(state: unknown): void {
    StateReader.open(state, 'machine', 1);
    const component = (name: string): StateReader => StateReader.open((state as Record<string, unknown>)[name], `machine.${name}`, 1);
    const cpu = component('cpu');
    const timer = component('timer0');
    const serial = component('serial0');
    const writes = cpu.uint('writes', Number.MAX_SAFE_INTEGER);
    const random = cpu.uint('random', 0xffff_ffff);
    const carry = cpu.number('carry');
    if (carry < 0 || carry >= 1e9) cpu.fail('carry', 'out of range');
    const ticks = timer.uint('ticks', Number.MAX_SAFE_INTEGER);
    const scratch = serial.bytes('scratch', SERIAL_SCRATCH, SERIAL_SCRATCH);
    // Everything checked: now apply.
    this.writes = writes;
    this.random = random;
    this.carry = carry;
    this.ticks = ticks;
    this.serial = scratch;
  }

  beginPostcopy(guard: PostcopyGuard): void {
    this.guard = guard;
  }

  endPostcopy(): void {
    this.guard = undefined;
  }

  /**
   * Runs up to `count` workload writes, as the guest would (deterministic
   * from the device state). In post-copy a write to a missing page faults
   * and stalls the guest; returns the writes done.
   */
  step(count: number): number {
    const workload = this.options.workload ?? { writesPerSecond: 0, pattern: 'uniform' };
    let done = 0;
    for (; done < count; done++) {
      const random = nextRandom(this.random);
      const target = workloadTarget(workload, this.pageCount, this.writes, random);
      if (this.guard?.isMissing(Math.floor(target / PAGE_SIZE))) {
        this.faults++;
        this.guard.fault(Math.floor(target / PAGE_SIZE));
        break;
      }
      this.random = random;
      this.memory.writeU32(guestAddress(target), (this.random ^ this.writes) >>> 0);
      this.writes++;
      this.serial[this.writes % SERIAL_SCRATCH] = this.random & 0xff;
    }
    return done;
  }

  /**
   * Fills a share of the pages with pseudo-random bytes (the rest stay zero),
   * as a guest that has been running a while would have them.
   */
  populate(seed: number, share = 0.75): void {
    let random = nextRandom(seed);
    const page = new Uint8Array(PAGE_SIZE);
    const words = new Uint32Array(page.buffer);
    for (let index = 0; index < this.pageCount; index++) {
      random = nextRandom(random);
      if (random % 1000 >= share * 1000) continue;
      for (let word = 0; word < words.length; word += 1) {
        random = nextRandom(random);
        words[word] = random;
      }
      this.memory.write(guestAddress(index * PAGE_SIZE), page);
    }
  }

  private tick(): void {
    if (!this.isRunning) return;
    const workload = this.options.workload!;
    this.ticks++;
    // Elapsed guest time, not the nominal tick: a real-time clock's timers run late.
    const now = this.options.clock!.now();
    this.carry += ((workload.writesPerSecond * (now - this.lastTick)) / 1e9) * ((100 - this.throttle) / 100);
    this.lastTick = now;
    const due = Math.floor(this.carry);
    // A stalled guest (post-copy fault) catches up once its page is there.
    if (due > 0) this.carry -= this.step(due);
    this.timer!.arm(now + this.tickNs);
  }
}

/** The first page where two memories differ, or -1 when they are byte-for-byte equal. */
export function firstDifferentPage(a: GuestRam, b: GuestRam): number {
  if (a.size !== b.size) return 0;
  const left = new Uint8Array(PAGE_SIZE);
  const right = new Uint8Array(PAGE_SIZE);
  for (let page = 0; page < a.size / PAGE_SIZE; page++) {
    const address = guestAddress(page * PAGE_SIZE);
    a.read(address, left);
    b.read(address, right);
    for (let index = 0; index < PAGE_SIZE; index++) if (left[index] !== right[index]) return page;
  }
  return -1;
}
