import { StateReader } from '@tsvirt/interfaces';
import { Ps2Queue } from './ps2-queue.js';

const ACK = 0xfa;
const RESEND = 0xfe;

export interface Ps2MouseState {
  queue: number[];
  enabled: boolean;
  remote: boolean;
  wrap: boolean;
  scaling21: boolean;
  resolution: number;
  sampleRate: number;
  deviceId: number;
  /** The last three sample rates set, for the IntelliMouse knock sequence. */
  rates: number[];
  pendingCommand: number;
  lastSent: number;
  dx: number;
  dy: number;
  dz: number;
  buttons: number;
}

/** Movement per packet: 9-bit two's complement. */
const MAX_DELTA = 255;
const MIN_DELTA = -256;

/**
 * A PS/2 mouse: stream and remote modes, wrap mode, status and read-data
 * requests, and the IntelliMouse wheel (ID 3 after sample rates 200, 100,
 * 80). Movement accumulates and goes out in packets as the buffer has room.
 * Scaling 2:1 is remembered and reported but not applied.
 */
export class Ps2Mouse {
  readonly queue = new Ps2Queue();
  private enabled = false;
  private remote = false;
  private wrap = false;
  private scaling21 = false;
  private resolution = 2;
  private sampleRate = 100;
  private deviceId = 0;
  private rates: number[] = [];
  private pendingCommand = 0;
  private lastSent = 0;
  private dx = 0;
  private dy = 0;
  private dz = 0;
  private buttons = 0;

  constructor(private readonly onData: () => void) {}

  /** Host movement: `dy` positive is up, `dz` positive scrolls towards the user. */
  move(dx: number, dy: number, dz = 0): void {
    const clampInt = (v: number) => (Number.isFinite(v) ? Math.max(-1e6, Math.min(1e6, Math.trunc(v))) : 0);
    this.dx = clampInt(this.dx + clampInt(dx));
    this.dy = clampInt(this.dy + clampInt(dy));
    // Only a wheel mouse (ID 3) reports dz; a plain one has nothing to send for it.
    this.dz = this.deviceId === 3 ? clampInt(this.dz + clampInt(dz)) : 0;
    this.flush();
  }

  /** Button state: bit 0 left, 1 right, 2 middle. */
  setButtons(buttons: number): void {
    this.buttons = buttons & 7;
    this.flush(true);
  }

  /** The controller took bytes: send movement still waiting, as the mouse would on its next sample. */
  drained(): void {
    if (this.dx !== 0 || this.dy !== 0 || this.dz !== 0) this.flush();
  }

  private packetSize(): number {
    return this.deviceId === 3 ? 4 : 3;
  }

  private flush(force = false): void {
    if (!this.enabled || this.remote || this.wrap) return;
    let sent = false;
    while ((force || this.dx !== 0 || this.dy !== 0 || this.dz !== 0) && this.queue.space >= this.packetSize()) {
      this.queue.pushData(this.packet());
      sent = true;
      force = false;
    }
    if (sent) this.onData();
  }

  /** One movement packet from the accumulated motion, taking out what it carries. */
  private packet(): number[] {
    const dx = Math.max(MIN_DELTA, Math.min(MAX_DELTA, this.dx));
    const dy = Math.max(MIN_DELTA, Math.min(MAX_DELTA, this.dy));
    const dz = Math.max(-8, Math.min(7, this.dz));
    this.dx -= dx;
    this.dy -= dy;
    this.dz -= dz;
    const first = 0x08 | (this.buttons & 7) | (dx < 0 ? 0x10 : 0) | (dy < 0 ? 0x20 : 0);
    const bytes = [first, dx & 0xff, dy & 0xff];
    if (this.deviceId === 3) bytes.push(dz & 0xff);
    return bytes;
  }

  receive(byte: number): void {
    if (this.wrap && byte !== 0xec && byte !== 0xff) {
      this.reply(byte);
      this.onData();
      return;
    }
    const command = this.pendingCommand;
    this.pendingCommand = 0;
    if (command !== 0) this.parameter(command, byte);
    else this.command(byte);
    this.onData();
  }

  private reply(...bytes: number[]): void {
    this.lastSent = bytes[bytes.length - 1]!;
    this.queue.pushReply(bytes);
  }

  private parameter(command: number, value: number): void {
    if (command === 0xe8) {
      this.resolution = value & 3;
    } else {
      this.sampleRate = value;
      this.rates = [...this.rates, value].slice(-3);
      if (this.rates.join() === '200,100,80') this.deviceId = 3;
    }
    this.reply(ACK);
  }

  private status(): number {
    // Status byte buttons: bit 0 right, 1 middle, 2 left.
    const b = this.buttons;
    const buttons = (b & 2 ? 1 : 0) | (b & 4 ? 2 : 0) | (b & 1 ? 4 : 0);
    return (this.remote ? 0x40 : 0) | (this.enabled ? 0x20 : 0) | (this.scaling21 ? 0x10 : 0) | buttons;
  }

  private command(byte: number): void {
    switch (byte) {
      case 0xe6:
      case 0xe7:
        this.scaling21 = byte === 0xe7;
        this.reply(ACK);
        return;
      case 0xe8:
      case 0xf3:
        this.pendingCommand = byte;
        this.reply(ACK);
        return;
      case 0xe9:
        this.reply(ACK, this.status(), this.resolution, this.sampleRate);
        return;
      case 0xea:
        this.remote = false;
        this.reply(ACK);
        return;
      case 0xeb:
        this.reply(ACK);
        this.queue.pushReply(this.packet());
        return;
      case 0xec:
        this.wrap = false;
        this.reply(ACK);
        return;
      case 0xee:
        this.wrap = true;
        this.reply(ACK);
        return;
      case 0xf0:
        this.remote = true;
        this.reply(ACK);
        return;
      case 0xf2:
        this.reply(ACK, this.deviceId);
        return;
      case 0xf4:
        this.enabled = true;
        this.reply(ACK);
        return;
      case 0xf5:
        this.enabled = false;
        this.reply(ACK);
        return;
      case 0xf6:
        this.setDefaults();
        this.reply(ACK);
        return;
      case 0xfe:
        this.reply(this.lastSent);
        return;
      case 0xff:
        this.reset();
        this.reply(ACK, 0xaa, 0x00);
        return;
      default:
        this.reply(RESEND);
    }
  }

  private setDefaults(): void {
    this.sampleRate = 100;
    this.resolution = 2;
    this.scaling21 = false;
    this.enabled = false;
    this.remote = false;
    this.dx = 0;
    this.dy = 0;
    this.dz = 0;
  }

  reset(): void {
    this.queue.clear();
    this.setDefaults();
    this.wrap = false;
    this.deviceId = 0;
    this.rates = [];
    this.pendingCommand = 0;
  }

  save(): Ps2MouseState {
    return {
      queue: [...this.queue.bytes],
      enabled: this.enabled,
      remote: this.remote,
      wrap: this.wrap,
      scaling21: this.scaling21,
      resolution: this.resolution,
      sampleRate: this.sampleRate,
      deviceId: this.deviceId,
      rates: [...this.rates],
      pendingCommand: this.pendingCommand,
      lastSent: this.lastSent,
      dx: this.dx,
      dy: this.dy,
      dz: this.dz,
      buttons: this.buttons,
    };
  }

  static read(reader: StateReader): Ps2MouseState {
    const pending = reader.uint('pendingCommand', 0xff);
    if (![0, 0xe8, 0xf3].includes(pending)) reader.fail('pendingCommand', 'not a command that takes a parameter');
    const deviceId = reader.uint('deviceId', 3);
    if (deviceId !== 0 && deviceId !== 3) reader.fail('deviceId', 'expected 0 or 3');
    return {
      queue: reader.uintArray('queue', 24, 0xff),
      enabled: reader.boolean('enabled'),
      remote: reader.boolean('remote'),
      wrap: reader.boolean('wrap'),
      scaling21: reader.boolean('scaling21'),
      resolution: reader.uint('resolution', 3),
      sampleRate: reader.uint('sampleRate', 0xff),
      deviceId,
      rates: reader.uintArray('rates', 3, 0xff),
      pendingCommand: pending,
      lastSent: reader.uint('lastSent', 0xff),
      dx: reader.int('dx', -1e6, 1e6),
      dy: reader.int('dy', -1e6, 1e6),
      dz: reader.int('dz', -1e6, 1e6),
      buttons: reader.uint('buttons', 7),
    };
  }

  apply(state: Ps2MouseState): void {
    this.queue.bytes = [...state.queue];
    this.enabled = state.enabled;
    this.remote = state.remote;
    this.wrap = state.wrap;
    this.scaling21 = state.scaling21;
    this.resolution = state.resolution;
    this.sampleRate = state.sampleRate;
    this.deviceId = state.deviceId;
    this.rates = [...state.rates];
    this.pendingCommand = state.pendingCommand;
    this.lastSent = state.lastSent;
    this.dx = state.dx;
    this.dy = state.dy;
    this.dz = state.dz;
    this.buttons = state.buttons;
  }
}
