import { StateReader, ignoreEvents } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice, IrqLine, Observer } from '@tsvirt/interfaces';
import type { ApicBus } from './apic-bus.js';
import { readBooleans } from './state-booleans.js';

export const IOAPIC_PINS = 24;
const IOREGSEL = 0x00;
const IOWIN = 0x10;
/** Version 0x20 adds a directed-EOI register. */
const EOI_REGISTER = 0x40;

const REDIRECTION_MASKED = 0x1_0000;
const REDIRECTION_LEVEL = 0x8000;
const REDIRECTION_REMOTE_IRR = 0x4000;
/** Writable low-dword bits: vector, delivery mode, destination mode, polarity, trigger mode, mask. */
const REDIRECTION_LOW_WRITABLE = 0x1_afff;

export type IoApicEvent = { readonly kind: 'delivered'; readonly pin: number; readonly vector: number };

export interface IoApicOptions {
  readonly bus: ApicBus;
  /** 0x11 (the 82093AA) or 0x20 (as QEMU, with an EOI register at 0x40). */
  readonly version?: 0x11 | 0x20;
  readonly id?: number;
  readonly observer?: Observer<IoApicEvent>;
}

export interface IoApicState {
  readonly version: 1;
  readonly id: number;
  readonly select: number;
  readonly low: number[];
  readonly high: number[];
  readonly levels: boolean[];
}

/**
 * The 82093AA I/O APIC: IOREGSEL/IOWIN at offsets 0x00/0x10 of its page
 * (0xFEC00000 on a pc), 24 redirection entries, edge and level inputs as
 * IrqLines, remote IRR cleared by EOI broadcasts (and the EOI register of
 * version 0x20), delivery through the {@link ApicBus}.
 *
 * Input levels are logical (asserted or not); the polarity bit is stored
 * for the guest but not applied, as devices already report assertion.
 */
export class IoApic {
  readonly mmio: BusDevice;
  readonly inputs: readonly IrqLine[];
  private id: number;
  private select = 0;
  private readonly low = new Uint32Array(IOAPIC_PINS);
  private readonly high = new Uint32Array(IOAPIC_PINS);
  private readonly levels = new Array<boolean>(IOAPIC_PINS).fill(false);
  private readonly bus: ApicBus;
  private readonly chipVersion: 0x11 | 0x20;
  private readonly observer: Observer<IoApicEvent>;

  constructor(options: IoApicOptions) {
    this.bus = options.bus;
    this.chipVersion = options.version ?? 0x20;
    this.id = (options.id ?? 0) & 0xf;
    this.observer = options.observer ?? ignoreEvents;
    this.inputs = Array.from({ length: IOAPIC_PINS }, (_, pin) => ({
      setLevel: (asserted: boolean) => this.setInput(pin, asserted),
      pulse: () => {
        this.setInput(pin, true);
        this.setInput(pin, false);
      },
    }));
    this.mmio = {
      read: (offset: number, size: AccessSize) => this.read(offset, size),
      write: (offset: number, size: AccessSize, value: number) => this.write(offset, size, value),
    };
    this.bus.onEoi((vector) => this.endOfInterrupt(vector));
    this.reset();
  }

  reset(): void {
    this.select = 0;
    this.low.fill(REDIRECTION_MASKED);
    this.high.fill(0);
  }

  private get versionRegister(): number {
    return ((IOAPIC_PINS - 1) << 16) | this.chipVersion;
  }

  private readRegister(index: number): number {
    if (index === 0x00) return (this.id << 24) >>> 0;
    if (index === 0x01) return this.versionRegister;
    if (index === 0x02) return (this.id << 24) >>> 0;
    if (index >= 0x10 && index < 0x10 + 2 * IOAPIC_PINS) {
      const pin = (index - 0x10) >> 1;
      return (index & 1) === 0 ? this.low[pin]! : this.high[pin]!;
    }
    return 0;
  }

  private read(offset: number, size: AccessSize): number {
    let value: number;
    let lane: number;
    if (offset < IOWIN) {
      value = this.select;
      lane = offset - IOREGSEL;
    } else if (offset < IOWIN + 4) {
      value = this.readRegister(this.select);
      lane = offset - IOWIN;
    } else {
      return 0;
    }
    if (lane >= 4) return 0;
    const shifted = value >>> (8 * lane);
    return size === 4 ? shifted >>> 0 : shifted & ((1 << (8 * size)) - 1);
  }

  private write(offset: number, size: AccessSize, value: number): void {
    if (offset === IOREGSEL) {
      this.select = value & 0xff;
    } else if (offset === IOWIN && size === 4) {
      this.writeRegister(this.select, value >>> 0);
    } else if (offset === EOI_REGISTER && size === 4 && this.chipVersion === 0x20) {
      this.endOfInterrupt(value & 0xff);
    }
  }

  private writeRegister(index: number, value: number): void {
    if (index === 0x00) {
      this.id = (value >>> 24) & 0xf;
      return;
    }
    if (index < 0x10 || index >= 0x10 + 2 * IOAPIC_PINS) return;
    const pin = (index - 0x10) >> 1;
    if ((index & 1) === 1) {
      this.high[pin] = (value & 0xff00_0000) >>> 0;
      return;
    }
    let next = (value & REDIRECTION_LOW_WRITABLE) | (this.low[pin]! & REDIRECTION_REMOTE_IRR);
    // Remote IRR means nothing for edge-triggered entries (QEMU clears it).
    if ((next & REDIRECTION_LEVEL) === 0) next &= ~REDIRECTION_REMOTE_IRR;
    this.low[pin] = next >>> 0;
    this.service(pin);
  }

  private setInput(pin: number, asserted: boolean): void {
    const rising = asserted && !this.levels[pin];
    this.levels[pin] = asserted;
    if ((this.low[pin]! & REDIRECTION_LEVEL) !== 0) this.service(pin);
    // An edge on a masked pin is lost, as on the 82093AA.
    else if (rising && (this.low[pin]! & REDIRECTION_MASKED) === 0) this.deliver(pin);
  }

  /** Level-triggered pins deliver while asserted, unmasked, and not awaiting EOI. */
  private service(pin: number): void {
    const entry = this.low[pin]!;
    if ((entry & REDIRECTION_LEVEL) === 0 || (entry & (REDIRECTION_MASKED | REDIRECTION_REMOTE_IRR)) !== 0 || this.levels[pin] !== true) return;
    this.low[pin] = (entry | REDIRECTION_REMOTE_IRR) >>> 0;
    this.deliver(pin);
  }

  private deliver(pin: number): void {
    const entry = this.low[pin]!;
    this.observer({ kind: 'delivered', pin, vector: entry & 0xff });
    this.bus.send({
      destination: this.high[pin]! >>> 24,
      logical: (entry & 0x800) !== 0,
      deliveryMode: (entry >> 8) & 7,
      vector: entry & 0xff,
      levelTriggered: (entry & REDIRECTION_LEVEL) !== 0,
      shorthand: 0,
      broadcast: 0xff,
    });
  }

  private endOfInterrupt(vector: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const entry = this.low[pin]!;
      if ((entry & 0xff) !== vector || (entry & REDIRECTION_REMOTE_IRR) === 0) continue;
      this.low[pin] = (entry & ~REDIRECTION_REMOTE_IRR) >>> 0;
      this.service(pin);
    }
  }

  /** The redirection entry of `pin` as 64 bits (high dword, low dword), for tests and debugging. */
  entry(pin: number): { low: number; high: number } {
    return { low: this.low[pin]!, high: this.high[pin]! };
  }

  save(): IoApicState {
    return { version: 1, id: this.id, select: this.select, low: [...this.low], high: [...this.high], levels: [...this.levels] };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'ioapic', 1);
    const id = reader.uint('id', 0xf);
    const select = reader.uint('select', 0xff);
    const low = reader.uintArray('low', IOAPIC_PINS, 0xffff_ffff, IOAPIC_PINS);
    low.forEach((entry) => {
      if ((entry & ~(REDIRECTION_LOW_WRITABLE | REDIRECTION_REMOTE_IRR)) !== 0) reader.fail('low', 'reserved bits set');
      if ((entry & REDIRECTION_REMOTE_IRR) !== 0 && (entry & REDIRECTION_LEVEL) === 0) reader.fail('low', 'remote IRR on an edge-triggered entry');
    });
    const high = reader.uintArray('high', IOAPIC_PINS, 0xffff_ffff, IOAPIC_PINS);
    if (high.some((entry) => (entry & 0x00ff_ffff) !== 0)) reader.fail('high', 'reserved bits set');
    const levels = readBooleans(state, reader, 'levels', IOAPIC_PINS);
    this.id = id;
    this.select = select;
    this.low.set(low);
    this.high.set(high);
    levels.forEach((level, pin) => (this.levels[pin] = level));
  }
}
