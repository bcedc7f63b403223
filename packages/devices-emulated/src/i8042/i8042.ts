import { StateReader, type AccessSize, type BusDevice, type IrqLine, type Stateful } from '@tsvirt/interfaces';
import { Ps2Keyboard, type Ps2KeyboardState } from './ps2-keyboard.js';
import { Ps2Mouse, type Ps2MouseState } from './ps2-mouse.js';
import { translateToSet1 } from './scancodes.js';

/** The data port and the status/command port: two one-byte devices, see {@link I8042.data} and {@link I8042.command}. */
export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
export const I8042_PORT_LENGTH = 1;

const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const STATUS_CMD = 0x08;
const STATUS_UNLOCKED = 0x10;
const STATUS_AUX_OBF = 0x20;

const CTR_KBD_INT = 0x01;
const CTR_AUX_INT = 0x02;
const CTR_SYS = 0x04;
const CTR_KBD_DISABLE = 0x10;
const CTR_AUX_DISABLE = 0x20;
const CTR_XLATE = 0x40;

/** Output port: bit 0 releases the CPU reset line, bit 1 gates A20, bits 4/5 mirror the output-buffer IRQs. */
const OUT_RESET = 0x01;
const OUT_A20 = 0x02;
const OUT_KBD_OBF = 0x10;
const OUT_AUX_OBF = 0x20;

export interface I8042Options {
  /** IRQ 1. */
  keyboardIrq: IrqLine;
  /** IRQ 12. */
  mouseIrq: IrqLine;
  /** The guest pulsed or cleared output port bit 0: reset the machine. */
  onReset?: () => void;
  /** Output port bit 1 (A20 gate) changed. */
  onA20Change?: (enabled: boolean) => void;
}

export interface I8042State {
  version: 1;
  ram: number[];
  status: number;
  outputPort: number;
  output: number;
  outputFull: boolean;
  outputAux: boolean;
  /** Controller replies waiting for the output buffer: [byte, fromAux (0/1)] pairs. */
  pending: number[];
  writeCommand: number;
  breakPrefix: boolean;
  keyboard: Ps2KeyboardState;
  mouse: Ps2MouseState;
}

/**
 * The 8042 keyboard controller with a PS/2 keyboard on its first port and a
 * PS/2 mouse on the auxiliary one. Ports: {@link I8042.data} at 0x60 and
 * {@link I8042.command} at 0x64 (status on read). The output buffer is
 * filled from controller replies first, then the keyboard, then the mouse;
 * IRQ 1 and 12 follow "buffer full" for the source that filled it when the
 * command byte enables them. Keyboard bytes are translated to set 1 when the
 * command byte's bit 6 is set. Bytes move instantly (IBF never reads 1).
 *
 * @example
 * ```ts
 * const kbc = new I8042({ keyboardIrq: pic.irqLine(1), mouseIrq: pic.irqLine(12), onReset: () => vm.reset(), onA20Change: (on) => cpu.setA20(on) });
 * pio.register(I8042_DATA_PORT, I8042_PORT_LENGTH, kbc.data, 'i8042-data');
 * pio.register(I8042_COMMAND_PORT, I8042_PORT_LENGTH, kbc.command, 'i8042-command');
 * kbc.keyboard.pressKey(0x1e, true); // A down
 * ```
 */
export class I8042 implements Stateful<I8042State> {
  readonly keyboard: Ps2Keyboard;
  readonly mouse: Ps2Mouse;
  /** Port 0x60. */
  readonly data: BusDevice;
  /** Port 0x64: status on read, controller command on write. */
  readonly command: BusDevice;
  private readonly keyboardIrq: IrqLine;
  private readonly mouseIrq: IrqLine;
  private readonly onReset: () => void;
  private readonly onA20Change: (enabled: boolean) => void;
  /** Controller RAM; byte 0 is the command byte. */
  private ram: number[] = new Array<number>(32).fill(0);
  private status = STATUS_CMD | STATUS_UNLOCKED;
  private outputPort = OUT_RESET | OUT_A20 | 0xcc;
  private output = 0;
  private outputFull = false;
  private outputAux = false;
  private pending: number[] = [];
  private writeCommand = 0;
  private breakPrefix = false;
  private keyboardLevel = false;
  private mouseLevel = false;

  constructor(options: I8042Options) {
    this.keyboardIrq = options.keyboardIrq;
    this.mouseIrq = options.mouseIrq;
    this.onReset = options.onReset ?? (() => {});
    this.onA20Change = options.onA20Change ?? (() => {});
    this.keyboard = new Ps2Keyboard(() => this.update());
    this.mouse = new Ps2Mouse(() => this.update());
    this.data = {
      read: (offset: number, size: AccessSize) => (offset === 0 && size === 1 ? this.readData() : size === 4 ? 0xffffffff : (1 << (8 * size)) - 1),
      write: (offset: number, size: AccessSize, value: number) => {
        if (offset === 0 && size === 1) this.writeData(value);
      },
    };
    this.command = {
      read: (offset: number, size: AccessSize) => (offset === 0 && size === 1 ? this.readStatus() : size === 4 ? 0xffffffff : (1 << (8 * size)) - 1),
      write: (offset: number, size: AccessSize, value: number) => {
        if (offset === 0 && size === 1) this.writeCommandPort(value);
      },
    };
    this.reset();
  }

  private get commandByte(): number {
    return this.ram[0]!;
  }

  /** Whether the output port currently enables A20. */
  get a20(): boolean {
    return (this.outputPort & OUT_A20) !== 0;
  }

  /** Power-on state: keyboard and mouse interrupts enabled (as QEMU), A20 enabled in the output port. */
  reset(): void {
    this.ram = new Array<number>(32).fill(0);
    this.ram[0] = CTR_KBD_INT | CTR_AUX_INT;
    this.status = STATUS_CMD | STATUS_UNLOCKED;
    this.outputPort = OUT_RESET | OUT_A20 | 0xcc;
    this.outputFull = false;
    this.outputAux = false;
    this.pending = [];
    this.writeCommand = 0;
    this.breakPrefix = false;
    this.keyboard.reset();
    this.mouse.reset();
    this.update();
  }

  private readStatus(): number {
    return (this.status & ~(STATUS_OBF | STATUS_AUX_OBF | STATUS_SYS)) | (this.outputFull ? STATUS_OBF : 0) | (this.outputFull && this.outputAux ? STATUS_AUX_OBF : 0) | (this.commandByte & CTR_SYS ? STATUS_SYS : 0);
  }

  private readData(): number {
    const value = this.output;
    this.outputFull = false;
    // The IRQ falls with the read before the next byte raises it again, so an edge-triggered
    // PIC/IOAPIC input sees one edge per byte (Linux's handler reads one byte per interrupt).
    this.driveIrqs();
    this.update();
    return value;
  }

  private queueReply(byte: number, aux = false): void {
    this.pending.push(byte & 0xff, aux ? 1 : 0);
    this.update();
  }

  private writeCommandPort(value: number): void {
    this.status |= STATUS_CMD;
    this.writeCommand = 0;
    if (value >= 0x20 && value <= 0x3f) {
      this.queueReply(this.ram[value - 0x20]!);
      return;
    }
    if ((value >= 0x60 && value <= 0x7f) || value === 0xd1 || value === 0xd2 || value === 0xd3 || value === 0xd4) {
      this.writeCommand = value;
      return;
    }
    if (value >= 0xf0) {
      // Pulse output port bits whose mask bit is 0; bit 0 is the CPU reset line.
      if (!(value & 1)) this.onReset();
      return;
    }
    switch (value) {
      case 0xa7:
        this.setCommandByte(this.commandByte | CTR_AUX_DISABLE);
        return;
      case 0xa8:
        this.setCommandByte(this.commandByte & ~CTR_AUX_DISABLE);
        return;
      case 0xa9: // auxiliary interface test: no error
      case 0xab: // keyboard interface test: no error
        this.queueReply(0x00);
        return;
      case 0xaa:
        // Self test passed; the controller sets its system flag.
        this.setCommandByte(this.commandByte | CTR_SYS);
        this.queueReply(0x55);
        return;
      case 0xad:
        this.setCommandByte(this.commandByte | CTR_KBD_DISABLE);
        return;
      case 0xae:
        this.setCommandByte(this.commandByte & ~CTR_KBD_DISABLE);
        return;
      case 0xc0: // input port
      case 0xe0: // test inputs
        this.queueReply(0x00);
        return;
      case 0xd0: {
        const obf = (this.outputFull && !this.outputAux ? OUT_KBD_OBF : 0) | (this.outputFull && this.outputAux ? OUT_AUX_OBF : 0);
        this.queueReply((this.outputPort & ~(OUT_KBD_OBF | OUT_AUX_OBF)) | obf);
        return;
      }
      case 0xdd:
        this.setOutputPort(this.outputPort & ~OUT_A20);
        return;
      case 0xdf:
        this.setOutputPort(this.outputPort | OUT_A20);
        return;
      default:
        // Unknown controller commands are ignored.
        return;
    }
  }

  private writeData(value: number): void {
    this.status &= ~STATUS_CMD;
    const command = this.writeCommand;
    this.writeCommand = 0;
    if (command >= 0x60 && command <= 0x7f) {
      if (command === 0x60) this.setCommandByte(value);
      else this.ram[command - 0x60] = value;
      return;
    }
    switch (command) {
      case 0xd1:
        this.setOutputPort(value);
        if (!(value & OUT_RESET)) this.onReset();
        return;
      case 0xd2:
        this.queueReply(value);
        return;
      case 0xd3:
        this.queueReply(value, true);
        return;
      case 0xd4:
        this.mouse.receive(value);
        return;
      default:
        this.keyboard.receive(value);
    }
  }

  private setCommandByte(value: number): void {
    this.ram[0] = value & 0xff;
    this.update();
  }

  private setOutputPort(value: number): void {
    const old = this.outputPort;
    this.outputPort = value & 0xff;
    if ((old ^ this.outputPort) & OUT_A20) this.onA20Change((this.outputPort & OUT_A20) !== 0);
  }

  /** Refills the output buffer if empty and drives IRQ 1 / 12. */
  private update(): void {
    if (!this.outputFull) this.refill();
    this.driveIrqs();
  }

  /** IRQ 1 / 12 follow "output buffer full" for the source that filled it, as the command byte enables them. */
  private driveIrqs(): void {
    const ctr = this.commandByte;
    const keyboardLevel = this.outputFull && !this.outputAux && (ctr & CTR_KBD_INT) !== 0;
    const mouseLevel = this.outputFull && this.outputAux && (ctr & CTR_AUX_INT) !== 0;
    if (keyboardLevel !== this.keyboardLevel) {
      this.keyboardLevel = keyboardLevel;
      this.keyboardIrq.setLevel(keyboardLevel);
    }
    if (mouseLevel !== this.mouseLevel) {
      this.mouseLevel = mouseLevel;
      this.mouseIrq.setLevel(mouseLevel);
    }
  }

  private refill(): void {
    if (this.pending.length > 0) {
      this.output = this.pending.shift()!;
      this.outputAux = this.pending.shift() === 1;
      this.outputFull = true;
      return;
    }
    const ctr = this.commandByte;
    if (!(ctr & CTR_KBD_DISABLE)) {
      // Translation swallows the break prefix and marks the next byte instead.
      for (let byte = this.keyboard.queue.shift(); byte !== undefined; byte = this.keyboard.queue.shift()) {
        if (!(ctr & CTR_XLATE)) {
          this.fill(byte, false);
          return;
        }
        if (byte === 0xf0) {
          this.breakPrefix = true;
          continue;
        }
        this.fill(translateToSet1(byte) | (this.breakPrefix ? 0x80 : 0), false);
        this.breakPrefix = false;
        return;
      }
    }
    if (!(ctr & CTR_AUX_DISABLE)) {
      const byte = this.mouse.queue.shift();
      if (byte !== undefined) {
        this.fill(byte, true);
        this.mouse.drained();
      }
    }
  }

  private fill(byte: number, aux: boolean): void {
    this.output = byte & 0xff;
    this.outputAux = aux;
    this.outputFull = true;
  }

  save(): I8042State {
    return {
      version: 1,
      ram: [...this.ram],
      status: this.status,
      outputPort: this.outputPort,
      output: this.output,
      outputFull: this.outputFull,
      outputAux: this.outputAux,
      pending: [...this.pending],
      writeCommand: this.writeCommand,
      breakPrefix: this.breakPrefix,
      keyboard: this.keyboard.save(),
      mouse: this.mouse.save(),
    };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'i8042', 1);
    const ram = reader.uintArray('ram', 32, 0xff, 32);
    const status = reader.uint('status', 0xff);
    const outputPort = reader.uint('outputPort', 0xff);
    const output = reader.uint('output', 0xff);
    const outputFull = reader.boolean('outputFull');
    const outputAux = reader.boolean('outputAux');
    const pending = reader.uintArray('pending', 256, 0xff);
    if (pending.length % 2 !== 0 || pending.some((v, i) => i % 2 === 1 && v > 1)) reader.fail('pending', 'expected [byte, 0|1] pairs');
    const writeCommand = reader.uint('writeCommand', 0xff);
    if (writeCommand !== 0 && !((writeCommand >= 0x60 && writeCommand <= 0x7f) || (writeCommand >= 0xd1 && writeCommand <= 0xd4))) {
      reader.fail('writeCommand', 'not a command that takes a data byte');
    }
    const breakPrefix = reader.boolean('breakPrefix');
    const keyboard = Ps2Keyboard.read(reader.child('keyboard'));
    const mouse = Ps2Mouse.read(reader.child('mouse'));
    this.ram = [...ram];
    this.status = status;
    this.outputPort = outputPort;
    this.output = output;
    this.outputFull = outputFull;
    this.outputAux = outputAux;
    this.pending = [...pending];
    this.writeCommand = writeCommand;
    this.breakPrefix = breakPrefix;
    this.keyboard.apply(keyboard);
    this.mouse.apply(mouse);
    // Drive both wires to the restored levels.
    this.keyboardLevel = this.outputFull && !this.outputAux && (this.commandByte & CTR_KBD_INT) !== 0;
    this.mouseLevel = this.outputFull && this.outputAux && (this.commandByte & CTR_AUX_INT) !== 0;
    this.keyboardIrq.setLevel(this.keyboardLevel);
    this.mouseIrq.setLevel(this.mouseLevel);
    this.update();
  }
}
