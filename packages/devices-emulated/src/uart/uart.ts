import { StateReader, encodeStateBytes, type AccessSize, type BusDevice, type CharacterBackend, type CharacterFrontend, type Clock, type IrqLine, type Stateful, type Timer } from '@tsvirt/interfaces';

/** The PC's COM port bases (8 ports each) and their usual IRQs: COM1/3 on 4, COM2/4 on 3. */
export const COM1_BASE = 0x3f8;
export const COM2_BASE = 0x2f8;
export const COM3_BASE = 0x3e8;
export const COM4_BASE = 0x2e8;
export const UART_LENGTH = 8;

const FIFO_SIZE = 16;
/** The 16550's reference clock: 1.8432 MHz, divided by 16 × the divisor latch. */
const UART_CLOCK_HZ = 1_843_200;

const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IER_RLSI = 0x04;
const IER_MSI = 0x08;
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_ERRORS = 0x1e;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const LCR_DLAB = 0x80;
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
const TRIGGER_LEVELS = [1, 4, 8, 14] as const;

export interface UartOptions {
  clock: Clock;
  irq: IrqLine;
  backend?: CharacterBackend;
}

export interface UartState {
  version: 1;
  rx: string;
  divisor: number;
  ier: number;
  fcr: number;
  lcr: number;
  mcr: number;
  lsr: number;
  msr: number;
  scr: number;
  thrPending: boolean;
  timeoutPending: boolean;
  /** The character-timeout timer's deadline, or -1 when idle. */
  timeoutDeadline: number;
}

/**
 * A 16550A UART. Transmission is instantaneous: a byte written to THR goes to
 * the backend at once, so THR and the transmitter are always empty again by
 * the next access (LSR.THRE and TEMT read 1) and the TX FIFO never holds
 * data. Reception uses a real 16-byte FIFO with trigger levels and the
 * 4-character timeout measured on the virtual clock. With no modem attached
 * the inputs read CTS, DSR and DCD asserted; in loopback (MCR bit 4) they
 * follow RTS, DTR, OUT1 and OUT2. The IRQ pin is gated by OUT2 and forced
 * off in loopback, as on a PC's serial card.
 *
 * @example
 * ```ts
 * const com1 = new Uart({ clock, irq: pic.irqLine(4), backend: new StdioBackend() }); // StdioBackend: @tsvirt/backends
 * pio.register(COM1_BASE, UART_LENGTH, com1, 'com1');
 * ```
 */
export class Uart implements BusDevice, Stateful<UartState> {
  private readonly clock: Clock;
  private readonly irq: IrqLine;
  private readonly backend: CharacterBackend | undefined;
  private readonly timeoutTimer: Timer;
  private rx: number[] = [];
  private divisor = 12;
  private ier = 0;
  private fcr = 0;
  private lcr = 0;
  private mcr = 0;
  /** Only the sticky bits (OE, PE, FE, BI); DR, THRE and TEMT are derived. */
  private lsr = 0;
  private msr = 0;
  private scr = 0;
  /** The THR-empty interrupt is armed (cleared by an IIR read that reports it, or a THR write). */
  private thrPending = false;
  private timeoutPending = false;
  private irqLevel = false;
  private readonly frontend: CharacterFrontend;

  constructor(options: UartOptions) {
    this.clock = options.clock;
    this.irq = options.irq;
    this.backend = options.backend;
    this.timeoutTimer = this.clock.createTimer(() => this.onTimeout());
    this.frontend = {
      receiveCapacity: () => (this.mcr & MCR_LOOP ? 0 : this.rxSpace()),
      receive: (data) => {
        for (const byte of data) this.receiveByte(byte);
        this.update();
      },
    };
    this.reset();
    this.backend?.connect(this.frontend);
  }

  /** Master reset (the MR pin): registers to their datasheet reset values. */
  reset(): void {
    this.rx = [];
    this.ier = 0;
    this.fcr = 0;
    this.lcr = 0;
    this.mcr = 0;
    this.lsr = 0;
    this.scr = 0;
    this.divisor = 12;
    this.thrPending = false;
    this.timeoutPending = false;
    this.timeoutTimer.cancel();
    this.msr = this.modemInputs();
    this.update();
  }

  /** The frontend a backend drives; tests may feed it directly. */
  get characterFrontend(): CharacterFrontend {
    return this.frontend;
  }

  private get fifoEnabled(): boolean {
    return (this.fcr & 1) !== 0;
  }

  private rxSpace(): number {
    return (this.fifoEnabled ? FIFO_SIZE : 1) - this.rx.length;
  }

  private modemInputs(): number {
    if (!(this.mcr & MCR_LOOP)) return MSR_CTS | MSR_DSR | MSR_DCD;
    return (this.mcr & MCR_RTS ? MSR_CTS : 0) | (this.mcr & MCR_DTR ? MSR_DSR : 0) | (this.mcr & MCR_OUT1 ? MSR_RI : 0) | (this.mcr & MCR_OUT2 ? MSR_DCD : 0);
  }

  read(offset: number, size: AccessSize): number {
    if (size !== 1) return size === 2 ? 0xffff : 0xffffffff;
    let value: number;
    switch (offset) {
      case 0:
        value = this.lcr & LCR_DLAB ? this.divisor & 0xff : this.readRbr();
        break;
      case 1:
        value = this.lcr & LCR_DLAB ? (this.divisor >> 8) & 0xff : this.ier;
        break;
      case 2:
        value = this.readIir();
        break;
      case 3:
        value = this.lcr;
        break;
      case 4:
        value = this.mcr;
        break;
      case 5:
        value = this.readLsr();
        break;
      case 6:
        value = this.msr;
        this.msr &= 0xf0;
        break;
      default:
        value = this.scr;
    }
    this.update();
    return value;
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (size !== 1) return;
    switch (offset) {
      case 0:
        if (this.lcr & LCR_DLAB) this.divisor = (this.divisor & 0xff00) | value;
        else this.transmit(value);
        break;
      case 1:
        if (this.lcr & LCR_DLAB) this.divisor = (this.divisor & 0xff) | (value << 8);
        else this.writeIer(value);
        break;
      case 2:
        this.writeFcr(value);
        break;
      case 3:
        this.lcr = value;
        break;
      case 4:
        this.writeMcr(value);
        break;
      case 5:
      case 6:
        // LSR and MSR are read-only on the 16550A (writes are factory test only).
        break;
      default:
        this.scr = value;
    }
    this.update();
  }

  private readRbr(): number {
    const byte = this.rx.shift() ?? 0;
    this.timeoutPending = false;
    this.restartTimeout();
    if (!(this.mcr & MCR_LOOP)) this.backend?.notifyReceiveReady();
    return byte;
  }

  private readLsr(): number {
    const value = this.lsr | (this.rx.length > 0 ? LSR_DR : 0) | LSR_THRE | LSR_TEMT;
    this.lsr = 0;
    return value;
  }

  /** The pending interrupt's IIR code (bit 0 set: none), by the 16550's priorities. */
  private interruptId(): number {
    if (this.ier & IER_RLSI && this.lsr & LSR_ERRORS) return 0x06;
    if (this.ier & IER_RDI) {
      if (this.rx.length > 0 && this.rx.length >= (this.fifoEnabled ? TRIGGER_LEVELS[this.fcr >> 6]! : 1)) return 0x04;
      if (this.timeoutPending) return 0x0c;
    }
    if (this.ier & IER_THRI && this.thrPending) return 0x02;
    if (this.ier & IER_MSI && this.msr & 0x0f) return 0x00;
    return 0x01;
  }

  private readIir(): number {
    const id = this.interruptId();
    // Reading IIR while it reports THRE is what acknowledges that interrupt.
    if (id === 0x02) this.thrPending = false;
    return id | (this.fifoEnabled ? 0xc0 : 0);
  }

  private writeIer(value: number): void {
    this.ier = value & 0x0f;
    // Linux (serial8250 startup's THRE test, start_tx) expects a THRE interrupt whenever THRI is written with THR empty.
    this.thrPending = (this.ier & IER_THRI) !== 0;
  }

  private writeFcr(value: number): void {
    const enable = (value & 1) !== 0;
    if (enable !== this.fifoEnabled) {
      // Switching FIFO mode clears both FIFOs.
      this.rx = [];
      this.timeoutPending = false;
    }
    if (!enable) {
      this.fcr = 0;
    } else {
      if (value & 0x02) {
        this.rx = [];
        this.timeoutPending = false;
      }
      this.fcr = value & 0xc9;
    }
    this.restartTimeout();
    this.backend?.notifyReceiveReady();
  }

  private writeMcr(value: number): void {
    const wasLoop = (this.mcr & MCR_LOOP) !== 0;
    const oldInputs = this.msr & 0xf0;
    this.mcr = value & 0x1f;
    const inputs = this.modemInputs();
    let deltas = this.msr & 0x0f;
    const changed = oldInputs ^ inputs;
    if (changed & MSR_CTS) deltas |= 0x01;
    if (changed & MSR_DSR) deltas |= 0x02;
    // TERI: trailing edge of RI only.
    if (oldInputs & MSR_RI && !(inputs & MSR_RI)) deltas |= 0x04;
    if (changed & MSR_DCD) deltas |= 0x08;
    this.msr = inputs | deltas;
    if (wasLoop && !(this.mcr & MCR_LOOP)) this.backend?.notifyReceiveReady();
  }

  private transmit(value: number): void {
    const byte = value & ((1 << (5 + (this.lcr & 3))) - 1);
    if (this.mcr & MCR_LOOP) this.receiveByte(byte);
    else this.backend?.write(Uint8Array.of(byte));
    // The byte left at once: THR is empty again.
    this.thrPending = true;
  }

  private receiveByte(byte: number): void {
    if (this.rxSpace() <= 0) {
      this.lsr |= LSR_OE;
      // Without FIFOs the new character overwrites RBR; with them the shift register is lost.
      if (!this.fifoEnabled) this.rx[0] = byte & 0xff;
      return;
    }
    this.rx.push(byte & 0xff);
    this.timeoutPending = false;
    this.restartTimeout();
  }

  /** ns for one character frame at the current divisor and line format. */
  private characterTime(): number {
    const bits = 1 + (5 + (this.lcr & 3)) + (this.lcr & 0x08 ? 1 : 0) + (this.lcr & 0x04 ? 2 : 1);
    return Math.ceil((bits * (this.divisor || 0x10000) * 16 * 1e9) / UART_CLOCK_HZ);
  }

  private restartTimeout(): void {
    if (this.fifoEnabled && this.rx.length > 0) this.timeoutTimer.arm(this.clock.now() + 4 * this.characterTime());
    else this.timeoutTimer.cancel();
  }

  private onTimeout(): void {
    if (this.fifoEnabled && this.rx.length > 0) this.timeoutPending = true;
    this.update();
  }

  private irqAsserted(): boolean {
    return this.interruptId() !== 0x01 && (this.mcr & (MCR_OUT2 | MCR_LOOP)) === MCR_OUT2;
  }

  private update(): void {
    const level = this.irqAsserted();
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.setLevel(level);
    }
  }

  save(): UartState {
    return {
      version: 1,
      rx: encodeStateBytes(Uint8Array.from(this.rx)),
      divisor: this.divisor,
      ier: this.ier,
      fcr: this.fcr,
      lcr: this.lcr,
      mcr: this.mcr,
      lsr: this.lsr,
      msr: this.msr,
      scr: this.scr,
      thrPending: this.thrPending,
      timeoutPending: this.timeoutPending,
      timeoutDeadline: this.timeoutTimer.deadline ?? -1,
    };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'uart', 1);
    const fcr = reader.uint('fcr', 0xff);
    if (fcr & ~0xc9 || (fcr !== 0 && !(fcr & 1))) reader.fail('fcr', 'not a value the FIFO control register can hold');
    const rx = reader.bytes('rx', FIFO_SIZE);
    if (rx.length > (fcr & 1 ? FIFO_SIZE : 1)) reader.fail('rx', 'more bytes than the receiver holds');
    const ier = reader.uint('ier', 0x0f);
    const lsr = reader.uint('lsr', 0xff);
    if (lsr & ~LSR_ERRORS) reader.fail('lsr', 'only error bits are stored');
    const mcr = reader.uint('mcr', 0x1f);
    const values = {
      divisor: reader.uint('divisor', 0xffff),
      lcr: reader.uint('lcr', 0xff),
      msr: reader.uint('msr', 0xff),
      scr: reader.uint('scr', 0xff),
      thrPending: reader.boolean('thrPending'),
      timeoutPending: reader.boolean('timeoutPending'),
    };
    const deadline = reader.int('timeoutDeadline', -1, Number.MAX_SAFE_INTEGER);
    this.rx = [...rx];
    this.fcr = fcr;
    this.ier = ier;
    this.lsr = lsr;
    this.mcr = mcr;
    Object.assign(this, values);
    if (deadline < 0) this.timeoutTimer.cancel();
    else this.timeoutTimer.arm(deadline);
    // Drive the wire to the restored level whatever it was before.
    this.irqLevel = this.irqAsserted();
    this.irq.setLevel(this.irqLevel);
  }
}
