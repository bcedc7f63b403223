import { ignoreEvents, StateReader, type AccessSize, type BusDevice, type Clock, type IrqLine, type Observer, type Stateful, type Timer } from '@tsvirt/interfaces';
import { PitChannel, type PitChannelState } from './pit-channel.js';
import { timeOfTick } from './pit-time.js';

/** Conventional ports: counters 0-2 and the control word at 0x40-0x43, port B at 0x61. */
export const PIT_BASE = 0x40;
export const PIT_LENGTH = 4;
export const PORT_B_BASE = 0x61;
export const PORT_B_LENGTH = 1;

/** The DRAM refresh request toggle of port B (bit 4) flips every 15.085 µs on a PC. */
const REFRESH_PERIOD_NS = 15_085;

export interface SpeakerEvent {
  kind: 'speaker';
  /** Channel 2 gate and the speaker data bit are both on. */
  on: boolean;
}

export interface PitOptions {
  clock: Clock;
  /** OUT of counter 0 (IRQ 0 on the ISA side). */
  irq: IrqLine;
  observer?: Observer<SpeakerEvent>;
}

export interface PitState {
  version: 1;
  channels: PitChannelState[];
  portB: number;
  irqLevel: boolean;
}

/**
 * The 8254 programmable interval timer with the PC's wiring: counter 0's OUT
 * drives IRQ 0, counter 2's gate and the speaker enable are port 0x61 bits 0
 * and 1, and port 0x61 reads counter 2's OUT in bit 5. Counters and OUT are
 * computed from the virtual clock, and a timer is armed only for counter 0's
 * next OUT edge. Counters 0 and 1 have their gates tied high.
 *
 * @example
 * ```ts
 * const pit = new Pit({ clock, irq: pic.irqLine(0) });
 * pio.register(PIT_BASE, PIT_LENGTH, pit, 'pit');
 * pio.register(PORT_B_BASE, PORT_B_LENGTH, pit.portB, 'port-b');
 * ```
 */
export class Pit implements BusDevice, Stateful<PitState> {
  private readonly clock: Clock;
  private readonly irq: IrqLine;
  private readonly observer: Observer<SpeakerEvent>;
  private readonly channels: [PitChannel, PitChannel, PitChannel];
  private readonly timer: Timer;
  /** Port B's writable bits 0-3 (gate 2, speaker data, parity and channel check enables). */
  private portBValue = 0;
  private irqLevel = false;
  /** NMI status and control register (port 0x61). */
  readonly portB: BusDevice;

  constructor(options: PitOptions) {
    this.clock = options.clock;
    this.irq = options.irq;
    this.observer = options.observer ?? ignoreEvents;
    this.channels = [new PitChannel(true), new PitChannel(true), new PitChannel(false)];
    this.timer = this.clock.createTimer(() => this.updateIrq(true));
    this.portB = {
      read: (offset, size) => (offset === 0 && size === 1 ? this.readPortB() : size === 4 ? 0xffffffff : (1 << (8 * size)) - 1),
      write: (offset, size, value) => {
        if (offset === 0 && size === 1) this.writePortB(value);
      },
    };
    this.reset();
  }

  /** Power-on state as a PC BIOS leaves it before programming: every counter in mode 3 with count 0x10000 (18.2 Hz). */
  reset(): void {
    const now = this.clock.now();
    this.portBValue = 0;
    this.channels.forEach((channel, index) => {
      channel.apply(new PitChannel(index !== 2).save());
      channel.control(0x36, now);
      channel.write(0, now);
      channel.write(0, now);
    });
    this.updateIrq();
  }

  read(offset: number, size: AccessSize): number {
    if (size !== 1) return size === 2 ? 0xffff : 0xffffffff;
    const channel = this.channels[offset];
    // The control word register is write-only: the 8254 floats the bus.
    return channel === undefined ? 0xff : channel.read(this.clock.now());
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (size !== 1) return;
    const now = this.clock.now();
    if (offset === 3) {
      const select = value >> 6;
      if (select === 3) this.readBack(value, now);
      else this.channels[select]!.control(value, now);
    } else {
      this.channels[offset]?.write(value, now);
    }
    this.updateIrq();
  }

  /** Read-back command: bit 5 clear latches counts, bit 4 clear latches status, bits 3:1 select counters 2:0. */
  private readBack(value: number, now: number): void {
    for (let index = 0; index < 3; index++) {
      if (!(value & (2 << index))) continue;
      const channel = this.channels[index]!;
      if (!(value & 0x20)) channel.latchCount(now);
      if (!(value & 0x10)) channel.latchStatus(now);
    }
  }

  private readPortB(): number {
    const now = this.clock.now();
    const refresh = Math.floor(now / REFRESH_PERIOD_NS) & 1;
    return (this.portBValue & 0x0f) | (refresh << 4) | (this.channels[2].output(now) ? 0x20 : 0);
  }

  private writePortB(value: number): void {
    const before = this.portBValue;
    this.portBValue = value & 0x0f;
    this.channels[2].setGate((value & 1) !== 0, this.clock.now());
    if ((before & 3) !== (this.portBValue & 3)) this.observer({ kind: 'speaker', on: (this.portBValue & 3) === 3 });
  }

  /**
   * Counter 0's OUT onto IRQ 0, and the timer for its next edge.
   *
   * The timer is armed for OUT's next transition, so when it fires OUT has
   * changed at least once. Finding the level unchanged means the callback
   * came late, after a whole pulse (mode 2's one-tick low, a mode 3 half
   * period): a busy host, a stopped VM process. The edge is shown anyway, so
   * the interrupt controller latches one interrupt for however many periods
   * were missed. That is the lost-tick policy "discard", where QEMU's 8254
   * ends up too: it replays the missed transitions, which the PIC or IOAPIC
   * collapse into one latched edge.
   */
  private updateIrq(fromTimer = false): void {
    const now = this.clock.now();
    const channel = this.channels[0];
    const level = channel.output(now);
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.setLevel(level);
    } else if (fromTimer) {
      this.irq.setLevel(!level);
      this.irq.setLevel(level);
    }
    const next = channel.nextTransition(now);
    if (next === undefined) this.timer.cancel();
    else this.timer.arm(Math.max(timeOfTick(channel.startTick + next), now));
  }

  /** For tests and the VM's idle logic: the counter 0 OUT level last driven onto IRQ 0. */
  get irqAsserted(): boolean {
    return this.irqLevel;
  }

  save(): PitState {
    return { version: 1, channels: this.channels.map((channel) => channel.save()), portB: this.portBValue, irqLevel: this.irqLevel };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'pit', 1);
    const channels = reader.children('channels', 3);
    if (channels.length !== 3) reader.fail('channels', 'expected 3 counters');
    const parsed = channels.map((channel) => PitChannel.read(channel));
    const portB = reader.uint('portB', 0x0f);
    const irqLevel = reader.boolean('irqLevel');
    if (parsed[0]!.gate !== true || parsed[1]!.gate !== true) reader.fail('channels', 'counters 0 and 1 have their gates tied high');
    if (parsed[2]!.gate !== ((portB & 1) === 1)) reader.fail('portB', 'bit 0 must match counter 2 gate');
    parsed.forEach((channel, index) => this.channels[index]!.apply(channel));
    this.portBValue = portB;
    // Drive the wire to the saved level: the line's receiver was restored with this level too.
    this.irqLevel = irqLevel;
    this.irq.setLevel(irqLevel);
    this.updateIrq();
  }
}
