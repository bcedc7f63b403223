import { StateReader } from '@tsvirt/interfaces';
import { ticksAt } from './pit-time.js';

/** Access modes of the RW field: latch command, LSB only, MSB only, LSB then MSB. */
const RW_LSB = 1;
const RW_MSB = 2;
const RW_WORD = 3;
/** The second byte of a word access. */
const RW_WORD_HIGH = 4;

export interface PitChannelState {
  mode: number;
  modeBits: number;
  bcd: boolean;
  rw: number;
  readState: number;
  writeState: number;
  writeLatch: number;
  latchedCount: number;
  countLatched: number;
  status: number;
  statusLatched: boolean;
  count: number;
  gate: boolean;
  loaded: boolean;
  awaitingCount: boolean;
  triggered: boolean;
  startTick: number;
  loadTick: number;
  frozenTicks: number;
  paused: boolean;
  out: boolean;
  heldValue: number;
}

/**
 * One 8254 counter. Nothing ticks: the counter value and OUT are functions of
 * the PIT clock edges since the count was loaded (or the gate triggered), so
 * reading is exact at any virtual time. `count` is the initial count in
 * clock periods (0 written means 0x10000, or 10000 in BCD).
 */
export class PitChannel {
  mode = 3;
  /** Mode bits as programmed (6 and 7 alias 2 and 3 but read back as written in the status byte). */
  modeBits = 3;
  bcd = false;
  rw = RW_WORD;
  readState = RW_WORD;
  writeState = RW_WORD;
  writeLatch = 0;
  latchedCount = 0;
  /** 0 when nothing is latched, else the RW state of the latched bytes still to read. */
  countLatched = 0;
  status = 0;
  statusLatched = false;
  count = 0x10000;
  gate: boolean;
  /** A count has been written since the last control word. */
  loaded = false;
  /** A control word was written and no complete count since (status NULL COUNT). */
  awaitingCount = false;
  /** Modes 1 and 5: the gate has triggered since the count was written. */
  triggered = false;
  startTick = 0;
  /** The clock edge count when the count was last written; the count reaches the counting element at the next edge. */
  loadTick = 0;
  /** Elapsed edges while counting is suspended (gate low). */
  frozenTicks = 0;
  paused = false;
  /** OUT when no count is loaded (after a control word). */
  out = true;
  /** The counting element's bits while no count is loaded: it stops where it was. */
  heldValue = 0;

  constructor(gate: boolean) {
    this.gate = gate;
  }

  /** Clock edges counted since the count was loaded or retriggered, or -1 if the counter is not running. */
  elapsed(now: number): number {
    if (!this.loaded) return -1;
    if ((this.mode === 1 || this.mode === 5) && !this.triggered) return -1;
    if (this.paused) return this.frozenTicks;
    // Never negative, even for a restored start in the future: the next OUT edge must lie ahead.
    return Math.max(0, ticksAt(now) - this.startTick);
  }

  private get modulus(): number {
    return this.bcd ? 10000 : 0x10000;
  }

  /** The counting element's value (binary), as a counter latch would capture it. */
  value(now: number): number {
    const d = this.elapsed(now);
    if (d < 0) return this.count % this.modulus;
    switch (this.mode) {
      // A full count (0x10000 or 10000) shows as 0 in the 16-bit counter.
      case 2:
        return (this.count - (d % this.count)) % this.modulus;
      case 3:
        return (this.count - ((2 * d) % this.count)) % this.modulus;
      default: {
        const m = this.modulus;
        return (((this.count - d) % m) + m) % m;
      }
    }
  }

  /** The counting element's 16 bits as a read sees them (BCD digits in BCD mode). */
  private raw(now: number): number {
    return this.loaded ? this.encode(this.value(now)) : this.heldValue;
  }

  /** The OUT pin. */
  output(now: number): boolean {
    const d = this.elapsed(now);
    if (d < 0) return this.out;
    const count = this.count;
    switch (this.mode) {
      case 0:
      case 1:
        return d >= count;
      case 2:
        if (!this.gate) return true;
        return count < 2 || d % count !== count - 1;
      case 3:
        if (!this.gate) return true;
        return count < 2 || d % count < (count + 1) >> 1;
      default:
        return d !== count;
    }
  }

  /** Edges since start at which OUT next changes, or undefined if it never does on its own. */
  nextTransition(now: number): number | undefined {
    const d = this.elapsed(now);
    if (d < 0 || this.paused) return undefined;
    const count = this.count;
    switch (this.mode) {
      case 0:
      case 1:
        return d < count ? count : undefined;
      case 2: {
        if (count < 2) return undefined;
        const base = d - (d % count);
        return d % count < count - 1 ? base + count - 1 : base + count;
      }
      case 3: {
        if (count < 2) return undefined;
        const base = d - (d % count);
        const half = (count + 1) >> 1;
        return d % count < half ? base + half : base + count;
      }
      default:
        return d < count ? count : d === count ? count + 1 : undefined;
    }
  }

  control(value: number, now: number): void {
    const rw = (value >> 4) & 3;
    if (rw === 0) {
      this.latchCount(now);
      return;
    }
    this.heldValue = this.raw(now);
    let mode = (value >> 1) & 7;
    if (mode > 5) mode -= 4;
    this.rw = rw;
    this.readState = rw;
    this.writeState = rw;
    this.mode = mode;
    this.modeBits = (value >> 1) & 7;
    this.bcd = (value & 1) !== 0;
    this.loaded = false;
    this.awaitingCount = true;
    this.triggered = false;
    this.paused = false;
    // A control word sets OUT: low in mode 0, high in the others.
    this.out = mode !== 0;
  }

  latchCount(now: number): void {
    if (this.countLatched !== 0) return;
    this.latchedCount = this.raw(now);
    this.countLatched = this.rw;
  }

  latchStatus(now: number): void {
    if (this.statusLatched) return;
    const nullCount = this.awaitingCount || ticksAt(now) <= this.loadTick;
    this.status = (this.output(now) ? 0x80 : 0) | (nullCount ? 0x40 : 0) | (this.rw << 4) | (this.modeBits << 1) | (this.bcd ? 1 : 0);
    this.statusLatched = true;
  }

  private encode(value: number): number {
    if (!this.bcd) return value & 0xffff;
    const v = value % 10000;
    return (Math.floor(v / 1000) << 12) | (Math.floor(v / 100) % 10 << 8) | (Math.floor(v / 10) % 10 << 4) | v % 10;
  }

  private decode(value: number): number {
    if (!this.bcd) return value === 0 ? 0x10000 : value;
    const v = ((value >> 12) & 15) * 1000 + ((value >> 8) & 15) * 100 + ((value >> 4) & 15) * 10 + (value & 15);
    return v === 0 ? 10000 : v;
  }

  read(now: number): number {
    if (this.statusLatched) {
      this.statusLatched = false;
      return this.status;
    }
    if (this.countLatched !== 0) {
      const state = this.countLatched;
      if (state === RW_LSB || state === RW_WORD) {
        this.countLatched = state === RW_WORD ? RW_MSB : 0;
        return this.latchedCount & 0xff;
      }
      this.countLatched = 0;
      return (this.latchedCount >> 8) & 0xff;
    }
    const value = this.raw(now);
    switch (this.readState) {
      case RW_LSB:
        return value & 0xff;
      case RW_MSB:
        return (value >> 8) & 0xff;
      case RW_WORD:
        this.readState = RW_WORD_HIGH;
        return value & 0xff;
      default:
        this.readState = RW_WORD;
        return (value >> 8) & 0xff;
    }
  }

  write(value: number, now: number): void {
    switch (this.writeState) {
      case RW_LSB:
        this.load(value, now);
        break;
      case RW_MSB:
        this.load(value << 8, now);
        break;
      case RW_WORD:
        this.writeLatch = value;
        this.writeState = RW_WORD_HIGH;
        // Mode 0: writing the first byte stops the count (OUT stays low until the new count runs out).
        if (this.mode === 0 && this.loaded) {
          this.heldValue = this.raw(now);
          this.loaded = false;
          this.out = false;
        }
        break;
      default:
        this.load(this.writeLatch | (value << 8), now);
        this.writeState = RW_WORD;
        break;
    }
  }

  private load(raw: number, now: number): void {
    this.count = this.decode(raw);
    this.loaded = true;
    this.awaitingCount = false;
    this.paused = false;
    this.startTick = ticksAt(now);
    this.loadTick = this.startTick;
    // Modes 1 and 5: a new count waits for the next gate trigger.
    this.triggered = false;
    this.out = true;
    // Modes 0, 2, 3, 4 count only with the gate high.
    if (!this.gate && this.mode !== 1 && this.mode !== 5) this.pause(now);
  }

  private pause(now: number): void {
    const d = this.elapsed(now);
    this.frozenTicks = Math.max(d, 0);
    this.paused = true;
  }

  setGate(level: boolean, now: number): void {
    if (level === this.gate) return;
    if (level) {
      this.gate = true;
      if (!this.loaded) return;
      if (this.mode === 1 || this.mode === 5 || this.mode === 2 || this.mode === 3) {
        // A rising gate (re)starts a full count in these modes.
        this.triggered = true;
        this.paused = false;
        this.startTick = ticksAt(now);
      } else if (this.paused) {
        this.paused = false;
        this.startTick = ticksAt(now) - this.frozenTicks;
      }
    } else {
      if (this.loaded && this.mode !== 1 && this.mode !== 5) this.pause(now);
      this.gate = false;
    }
  }

  save(): PitChannelState {
    return {
      mode: this.mode,
      modeBits: this.modeBits,
      bcd: this.bcd,
      rw: this.rw,
      readState: this.readState,
      writeState: this.writeState,
      writeLatch: this.writeLatch,
      latchedCount: this.latchedCount,
      countLatched: this.countLatched,
      status: this.status,
      statusLatched: this.statusLatched,
      count: this.count,
      gate: this.gate,
      loaded: this.loaded,
      awaitingCount: this.awaitingCount,
      triggered: this.triggered,
      startTick: this.startTick,
      loadTick: this.loadTick,
      frozenTicks: this.frozenTicks,
      paused: this.paused,
      out: this.out,
      heldValue: this.heldValue,
    };
  }

  static read(reader: StateReader): PitChannelState {
    const count = reader.uint('count', 0x10000);
    if (count === 0) reader.fail('count', 'the initial count is at least 1');
    const mode = reader.uint('mode', 5);
    const modeBits = reader.uint('modeBits', 7);
    if ((modeBits > 5 ? modeBits - 4 : modeBits) !== mode) reader.fail('modeBits', 'does not select the saved mode');
    return {
      mode,
      modeBits,
      bcd: reader.boolean('bcd'),
      rw: reader.int('rw', 1, 3),
      readState: reader.int('readState', 1, 4),
      writeState: reader.int('writeState', 1, 4),
      writeLatch: reader.uint('writeLatch', 0xff),
      latchedCount: reader.uint('latchedCount', 0xffff),
      countLatched: reader.uint('countLatched', 3),
      status: reader.uint('status', 0xff),
      statusLatched: reader.boolean('statusLatched'),
      count,
      gate: reader.boolean('gate'),
      loaded: reader.boolean('loaded'),
      awaitingCount: reader.boolean('awaitingCount'),
      triggered: reader.boolean('triggered'),
      startTick: reader.int('startTick', -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
      loadTick: reader.int('loadTick', -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
      frozenTicks: reader.uint('frozenTicks', Number.MAX_SAFE_INTEGER),
      paused: reader.boolean('paused'),
      out: reader.boolean('out'),
      heldValue: reader.uint('heldValue', 0xffff),
    };
  }

  apply(state: PitChannelState): void {
    Object.assign(this, state);
  }
}
