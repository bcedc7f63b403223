import { type Clock, StateReader, type Timer } from '@tsvirt/interfaces';
import type { VirtioDevice, VirtioDeviceContext } from '../device.js';
import { type DescriptorChain, QueueError, writeToChain } from '../queue/split-queue.js';
import { DeviceType } from '../spec.js';

/** Bytes handed out per request at most (a request may ask for more; the driver asks again). */
const MAX_REQUEST = 64 * 1024;
/** crypto.getRandomValues fills at most this many bytes per call. */
const RANDOM_CALL_LIMIT = 65536;

export interface VirtioRngOptions {
  /** Fills `bytes` with random data; the host's CSPRNG (`crypto.getRandomValues`) by default. */
  readonly random?: (bytes: Uint8Array) => void;
  /** QEMU's `max-bytes` per `period` (ms): a guest cannot drain the host's entropy faster. Needs `clock`. */
  readonly rateLimit?: { readonly maxBytes: number; readonly periodMs: number };
  /** The machine's clock, for the rate limit's periods. */
  readonly clock?: Clock;
}

/**
 * virtio-rng (virtio 1.2, 5.4): one queue; each request's writable buffers
 * are filled with random bytes from the host (up to 64 KiB a request). With
 * a rate limit, requests wait for the next period once its bytes are spent,
 * as QEMU's `max-bytes`/`period`.
 */
export class VirtioRng implements VirtioDevice {
  readonly deviceType = DeviceType.Entropy;
  readonly queueMaxSizes = [64];
  readonly features = 0n;
  readonly configSize = 0;
  private readonly random: (bytes: Uint8Array) => void;
  private readonly rateLimit: { readonly maxBytes: number; readonly periodNs: number } | undefined;
  private readonly timer: Timer | undefined;
  private readonly clock: Clock | undefined;
  private context: VirtioDeviceContext | undefined;
  private budget = Number.POSITIVE_INFINITY;
  private periodEnd = 0;
  /** Chains taken from the queue and waiting for the rate limit. */
  private readonly waiting: DescriptorChain[] = [];

  constructor(options: VirtioRngOptions = {}) {
    this.random = options.random ?? fillFromCrypto;
    if (options.rateLimit !== undefined) {
      const { maxBytes, periodMs } = options.rateLimit;
      if (!(maxBytes >= 1) || !(periodMs > 0)) throw new RangeError('the rate limit needs maxBytes of at least 1 and a positive period');
      if (options.clock === undefined) throw new RangeError('a rate-limited virtio-rng needs the machine clock');
      this.rateLimit = { maxBytes: Math.floor(maxBytes), periodNs: periodMs * 1e6 };
      this.clock = options.clock;
      this.timer = options.clock.createTimer(() => this.drain());
      this.budget = this.rateLimit.maxBytes;
    }
  }

  readConfig(): number {
    return 0;
  }

  writeConfig(): void {}

  activate(context: VirtioDeviceContext): void {
    this.context = context;
  }

  notify(index: number): void {
    const context = this.context;
    if (context === undefined || index !== 0) return;
    const queue = context.queues[0]!;
    for (let chain = queue.pop(context.memory); chain !== undefined; chain = queue.pop(context.memory)) this.waiting.push(chain);
    this.drain();
  }

  reset(): void {
    this.context = undefined;
    this.waiting.length = 0;
    this.timer?.cancel();
  }

  save(): { version: 1; waiting: number[] } {
    return { version: 1, waiting: this.waiting.map((chain) => chain.head) };
  }

  restore(state: unknown, context: VirtioDeviceContext | undefined): void {
    const waiting = StateReader.open(state, 'virtio-rng', 1).uintArray('waiting', 64, 63);
    this.reset();
    if (context === undefined) return;
    this.context = context;
    for (const head of waiting) this.waiting.push(context.queues[0]!.chainAt(context.memory, head));
    this.drain();
  }

  private drain(): void {
    const context = this.context;
    if (context === undefined) return;
    this.refill();
    let served = 0;
    try {
      while (this.waiting.length > 0 && this.budget > 0) {
        const chain = this.waiting.shift()!;
        const length = Math.min(chain.writableLength, MAX_REQUEST, this.budget);
        const bytes = new Uint8Array(length);
        for (let at = 0; at < length; at += RANDOM_CALL_LIMIT) this.random(bytes.subarray(at, Math.min(length, at + RANDOM_CALL_LIMIT)));
        const written = writeToChain(context.memory, chain, 0, bytes);
        this.budget -= written;
        context.queues[0]!.push(context.memory, chain.head, written);
        served++;
      }
    } catch (error) {
      if (!(error instanceof QueueError)) throw error;
      context.fail(error.message);
      return;
    }
    if (served > 0) context.signalQueue(0);
    if (this.waiting.length > 0 && this.timer !== undefined) this.timer.arm(this.periodEnd);
  }

  /** A new period brings a new budget. */
  private refill(): void {
    if (this.rateLimit === undefined || this.clock === undefined) return;
    const now = this.clock.now();
    if (now < this.periodEnd) return;
    this.budget = this.rateLimit.maxBytes;
    this.periodEnd = now + this.rateLimit.periodNs;
  }
}

function fillFromCrypto(bytes: Uint8Array): void {
  globalThis.crypto.getRandomValues(bytes);
}
