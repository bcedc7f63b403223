import { StateReader } from '@tsvirt/interfaces';
import { Ps2Queue } from './ps2-queue.js';
import { scancodeBytes, type KeyCode } from './scancodes.js';

const ACK = 0xfa;
const RESEND = 0xfe;
const BAT_OK = 0xaa;

export interface Ps2KeyboardState {
  queue: number[];
  scanning: boolean;
  scancodeSet: number;
  leds: number;
  typematic: number;
  /** The command whose parameter byte is expected (0xED, 0xF0, 0xF3), or 0. */
  pendingCommand: number;
  lastSent: number;
}

/**
 * A PS/2 (MF2) keyboard: the host command set Linux's atkbd uses and key
 * events from the host side in scancode set 1 or 2. Typematic repeat is the
 * host's business (call `pressKey` again); scancode set 3 is refused.
 */
export class Ps2Keyboard {
  readonly queue = new Ps2Queue();
  private scanning = true;
  private scancodeSet: 1 | 2 = 2;
  private ledState = 0;
  private typematic = 0x2b;
  private pendingCommand = 0;
  private lastSent = 0;

  constructor(private readonly onData: () => void) {}

  /** LED bits from the last 0xED command: 0 Scroll Lock, 1 Num Lock, 2 Caps Lock. */
  get leds(): number {
    return this.ledState;
  }

  /** Queues a key's make or break code; false if scanning is off or the buffer is full. */
  pressKey(key: KeyCode, pressed: boolean): boolean {
    const bytes = scancodeBytes(key, pressed, this.scancodeSet);
    if (bytes === undefined) throw new RangeError(`no key has set-1 code 0x${Number(key).toString(16)}`);
    return this.sendScancodes(bytes);
  }

  /** Queues raw scancode bytes (Pause, Print Screen and other multi-byte sequences). */
  sendScancodes(bytes: readonly number[]): boolean {
    if (!this.scanning) return false;
    if (!this.queue.pushData(bytes.map((b) => b & 0xff))) return false;
    this.onData();
    return true;
  }

  /** A byte from the host through the controller. */
  receive(byte: number): void {
    // A command makes the keyboard drop what it had not sent yet.
    this.queue.clear();
    const command = this.pendingCommand;
    if (command !== 0 && byte < 0xed) {
      this.pendingCommand = 0;
      this.parameter(command, byte);
    } else {
      this.pendingCommand = 0;
      this.command(byte);
    }
    this.onData();
  }

  private reply(...bytes: number[]): void {
    this.lastSent = bytes[bytes.length - 1]!;
    this.queue.pushReply(bytes);
  }

  private parameter(command: number, value: number): void {
    switch (command) {
      case 0xed:
        this.ledState = value & 7;
        this.reply(ACK);
        return;
      case 0xf3:
        this.typematic = value & 0x7f;
        this.reply(ACK);
        return;
      default: // 0xF0: scancode set
        if (value === 0) this.reply(ACK, this.scancodeSet);
        else if (value === 1 || value === 2) {
          this.scancodeSet = value;
          this.reply(ACK);
        } else this.reply(RESEND);
    }
  }

  private command(byte: number): void {
    switch (byte) {
      case 0xed:
      case 0xf0:
      case 0xf3:
        this.pendingCommand = byte;
        this.reply(ACK);
        return;
      case 0xee:
        this.reply(0xee);
        return;
      case 0xf2:
        this.reply(ACK, 0xab, 0x83);
        return;
      case 0xf4:
        this.scanning = true;
        this.reply(ACK);
        return;
      case 0xf5:
        this.setDefaults();
        this.scanning = false;
        this.reply(ACK);
        return;
      case 0xf6:
        this.setDefaults();
        this.reply(ACK);
        return;
      case 0xf7:
      case 0xf8:
      case 0xf9:
      case 0xfa:
      case 0xfb:
      case 0xfc:
      case 0xfd:
        // Set-3 key type commands: acknowledged, no effect in sets 1 and 2.
        this.reply(ACK);
        return;
      case 0xfe:
        this.reply(this.lastSent);
        return;
      case 0xff:
        this.reset();
        this.reply(ACK, BAT_OK);
        return;
      default:
        this.reply(RESEND);
    }
  }

  private setDefaults(): void {
    this.typematic = 0x2b;
    this.scancodeSet = 2;
  }

  reset(): void {
    this.queue.clear();
    this.setDefaults();
    this.scanning = true;
    this.ledState = 0;
    this.pendingCommand = 0;
  }

  save(): Ps2KeyboardState {
    return {
      queue: [...this.queue.bytes],
      scanning: this.scanning,
      scancodeSet: this.scancodeSet,
      leds: this.ledState,
      typematic: this.typematic,
      pendingCommand: this.pendingCommand,
      lastSent: this.lastSent,
    };
  }

  static read(reader: StateReader): Ps2KeyboardState {
    const set = reader.int('scancodeSet', 1, 2);
    const pending = reader.uint('pendingCommand', 0xff);
    if (![0, 0xed, 0xf0, 0xf3].includes(pending)) reader.fail('pendingCommand', 'not a command that takes a parameter');
    return {
      queue: reader.uintArray('queue', 24, 0xff),
      scanning: reader.boolean('scanning'),
      scancodeSet: set,
      leds: reader.uint('leds', 7),
      typematic: reader.uint('typematic', 0x7f),
      pendingCommand: pending,
      lastSent: reader.uint('lastSent', 0xff),
    };
  }

  apply(state: Ps2KeyboardState): void {
    this.queue.bytes = [...state.queue];
    this.scanning = state.scanning;
    this.scancodeSet = state.scancodeSet === 1 ? 1 : 2;
    this.ledState = state.leds;
    this.typematic = state.typematic;
    this.pendingCommand = state.pendingCommand;
    this.lastSent = state.lastSent;
  }
}
