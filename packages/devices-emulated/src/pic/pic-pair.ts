import { StateReader, type AccessSize, type BusDevice, type InterruptController, type IrqLine, type Stateful } from '@tsvirt/interfaces';
import { PicChip, type PicChipState } from './pic-chip.js';

/** Conventional port bases of the two 8259As (2 ports each) and the PIIX ELCR pair. */
export const PIC_MASTER_BASE = 0x20;
export const PIC_SLAVE_BASE = 0xa0;
export const PIC_LENGTH = 2;
export const ELCR_BASE = 0x4d0;
export const ELCR_LENGTH = 2;

/** The cascade: the slave's INT drives master IR2. */
const CASCADE_IRQ = 2;

export interface PicPairOptions {
  /** The master's INT output changed; the machine wakes a halted CPU on `true`. */
  onInterruptChanged?: (asserted: boolean) => void;
}

export interface PicPairState {
  version: 1;
  master: PicChipState;
  slave: PicChipState;
}

/**
 * The PC's cascaded 8259A pair: IRQ 0-7 on the master, IRQ 8-15 on the slave
 * whose INT output drives master IR2. The pair is the CPU's
 * {@link InterruptController} (INTA returns a vector), and its chips are
 * reached through {@link PicPair.master}/{@link PicPair.slave} as bus devices.
 *
 * @example
 * ```ts
 * const pic = new PicPair({ onInterruptChanged: (up) => up && cpu.wake() });
 * pio.register(PIC_MASTER_BASE, PIC_LENGTH, pic.master, 'pic-master');
 * pio.register(PIC_SLAVE_BASE, PIC_LENGTH, pic.slave, 'pic-slave');
 * const pitIrq = pic.irqLine(0);
 * ```
 */
export class PicPair implements InterruptController, Stateful<PicPairState> {
  private readonly masterChip = new PicChip(0xf8, true);
  private readonly slaveChip = new PicChip(0xde, false);
  private readonly onInterruptChanged: (asserted: boolean) => void;
  private output = false;
  private readonly lines: IrqLine[];
  /** Port 0x20/0x21 (offset 0: command/status, 1: data/mask). */
  readonly master: BusDevice;
  /** Port 0xA0/0xA1. */
  readonly slave: BusDevice;
  /** The ELCR pair at 0x4D0/0x4D1, for a machine whose PIIX model does not claim it. */
  readonly elcr: BusDevice;

  constructor(options: PicPairOptions = {}) {
    this.onInterruptChanged = options.onInterruptChanged ?? (() => {});
    this.lines = Array.from({ length: 16 }, (_, irq) => ({
      setLevel: (asserted: boolean) => this.setIrq(irq, asserted),
      pulse: () => {
        this.setIrq(irq, true);
        this.setIrq(irq, false);
      },
    }));
    this.master = this.chipDevice(this.masterChip);
    this.slave = this.chipDevice(this.slaveChip);
    this.elcr = {
      read: (offset, size) => {
        if (size !== 1) return size === 2 && offset === 0 ? this.triggerModes : size === 4 ? 0xffffffff : 0xffff;
        return offset === 0 ? this.masterChip.elcr : this.slaveChip.elcr;
      },
      write: (offset, size, value) => {
        if (size === 2 && offset === 0) this.setTriggerModes(value);
        else if (size === 1) this.setTriggerModes(offset === 0 ? (this.triggerModes & 0xff00) | value : (this.triggerModes & 0xff) | (value << 8));
      },
    };
  }

  /** The input wire for IRQ `irq` (0-15). IRQ 2 is the cascade and has no external device. */
  irqLine(irq: number): IrqLine {
    const line = this.lines[irq];
    if (line === undefined) throw new RangeError(`PIC IRQ ${irq} is not 0-15`);
    return line;
  }

  setIrq(irq: number, asserted: boolean): void {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`PIC IRQ ${irq} is not 0-15`);
    if (irq < 8) this.masterChip.setInput(irq, asserted);
    else this.slaveChip.setInput(irq - 8, asserted);
    this.update();
  }

  /** ELCR as a 16-bit value (bit n: IRQ n is level-triggered). IRQ 0, 1, 2, 8 and 13 are always edge. */
  get triggerModes(): number {
    return this.masterChip.elcr | (this.slaveChip.elcr << 8);
  }

  setTriggerModes(value: number): void {
    this.masterChip.elcr = value & this.masterChip.elcrMask;
    this.slaveChip.elcr = (value >> 8) & this.slaveChip.elcrMask;
    this.update();
  }

  /** Sets one IRQ's ELCR bit (what a PIIX3 model calls when the guest writes its ELCR). */
  setLevelTriggered(irq: number, level: boolean): void {
    const bit = 1 << irq;
    this.setTriggerModes(level ? this.triggerModes | bit : this.triggerModes & ~bit);
  }

  pending(): boolean {
    return this.masterChip.highestRequest() >= 0;
  }

  /** The INTA cycle; an interrupt that went away yields the spurious vector (IR7 of the chip that answered). */
  acknowledge(): number {
    const master = this.masterChip;
    const irq = master.highestRequest();
    let vector: number;
    if (irq < 0) {
      vector = master.vectorBase + 7;
    } else {
      master.acknowledge(irq);
      if (irq === CASCADE_IRQ && !master.single) {
        const slaveIrq = this.slaveChip.highestRequest();
        if (slaveIrq >= 0) this.slaveChip.acknowledge(slaveIrq);
        vector = this.slaveChip.vectorBase + (slaveIrq >= 0 ? slaveIrq : 7);
      } else {
        vector = master.vectorBase + irq;
      }
    }
    this.update();
    return vector;
  }

  /** Machine reset: both chips back to their power-on state (ELCR is kept, as PIIX resets it separately). */
  reset(): void {
    for (const chip of [this.masterChip, this.slaveChip]) {
      const elcr = chip.elcr;
      chip.apply(new PicChip(chip.elcrMask, chip.isMaster).save());
      chip.elcr = elcr;
    }
    this.update();
  }

  private chipDevice(chip: PicChip): BusDevice {
    return {
      read: (offset: number, size: AccessSize) => {
        if (size !== 1) return size === 2 ? 0xffff : 0xffffffff;
        let value: number;
        if (chip.poll) {
          value = chip.pollRead();
          // A poll acknowledging the master's cascade level does not reach the slave (no INTA cycle).
        } else {
          value = offset === 0 ? chip.readStatus() : chip.imr;
        }
        this.update();
        return value;
      },
      write: (offset: number, size: AccessSize, value: number) => {
        if (size !== 1) return;
        if (offset === 0) chip.writeCommand(value);
        else chip.writeData(value);
        this.update();
      },
    };
  }

  /** Propagates the slave's INT to master IR2 and reports the master's INT. */
  private update(): void {
    this.masterChip.setInput(CASCADE_IRQ, this.slaveChip.highestRequest() >= 0);
    const output = this.masterChip.highestRequest() >= 0;
    if (output !== this.output) {
      this.output = output;
      this.onInterruptChanged(output);
    }
  }

  save(): PicPairState {
    return { version: 1, master: this.masterChip.save(), slave: this.slaveChip.save() };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'pic', 1);
    const master = PicChip.read(reader.child('master'), this.masterChip.elcrMask);
    const slave = PicChip.read(reader.child('slave'), this.slaveChip.elcrMask);
    this.masterChip.apply(master);
    this.slaveChip.apply(slave);
    this.output = this.masterChip.highestRequest() >= 0;
  }
}
