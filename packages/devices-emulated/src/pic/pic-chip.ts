import { StateReader } from '@tsvirt/interfaces';

/** The saved registers of one 8259A. */
export interface PicChipState {
  irr: number;
  imr: number;
  isr: number;
  /** Input levels last seen, for edge detection. */
  inputs: number;
  /** The level-triggered inputs (ELCR bits, or all when ICW1.LTIM). */
  elcr: number;
  lowestPriority: number;
  vectorBase: number;
  initStep: number;
  readIsr: boolean;
  poll: boolean;
  specialMask: boolean;
  levelTriggeredAll: boolean;
  autoEoi: boolean;
  rotateOnAutoEoi: boolean;
  specialFullyNested: boolean;
  expectIcw4: boolean;
  single: boolean;
  icw3: number;
}

const NONE = 8;

/**
 * One 8259A. It knows its IR inputs, its three 8-bit registers and its
 * initialisation state machine; cascading is done by {@link PicPair}.
 * Priorities are kept as "the IR with the highest priority" (`lowestPriority
 * + 1`), which is what rotation changes.
 */
export class PicChip {
  irr = 0;
  imr = 0;
  isr = 0;
  inputs = 0;
  elcr = 0;
  /** The IR level that currently has the lowest priority (7 after ICW1). */
  lowestPriority = 7;
  vectorBase = 0;
  /** 0: operational; 2, 3, 4: waiting for ICW2, ICW3, ICW4. */
  initStep = 0;
  readIsr = false;
  poll = false;
  specialMask = false;
  levelTriggeredAll = false;
  autoEoi = false;
  rotateOnAutoEoi = false;
  specialFullyNested = false;
  expectIcw4 = false;
  single = false;
  icw3 = 0;

  constructor(
    /** The inputs that may be level-triggered through ELCR (0xF8 master, 0xDE slave on PIIX). */
    readonly elcrMask: number,
    /** The master ignores its cascade input's ISR bit in special fully nested mode. */
    readonly isMaster: boolean,
  ) {}

  /** Sets an IR input's level. */
  setInput(irq: number, level: boolean): void {
    const bit = 1 << irq;
    if (this.isMaster && irq === 2 && !this.single && !this.isLevelTriggered(irq)) {
      // The cascade input latches while the slave's INT is high and is cleared only by INTA:
      // a slave request that stays up after INTA asks again, and one that vanishes
      // after latching is answered with the slave's IR7 (spurious IRQ 15).
      if (level) this.irr |= bit;
    } else if (this.isLevelTriggered(irq)) {
      if (level) this.irr |= bit;
      else this.irr &= ~bit;
    } else if (level && !(this.inputs & bit)) {
      // Edge mode latches a rising edge; the request stays until acknowledged.
      this.irr |= bit;
    }
    this.inputs = level ? this.inputs | bit : this.inputs & ~bit;
  }

  isLevelTriggered(irq: number): boolean {
    return this.levelTriggeredAll || (this.elcr & (1 << irq)) !== 0;
  }

  /** Priority rank (0 = highest) of the highest-priority bit of `mask`, or 8 if none. */
  private rank(mask: number): number {
    if ((mask & 0xff) === 0) return NONE;
    let rank = 0;
    while ((mask & (1 << ((rank + this.lowestPriority + 1) & 7))) === 0) rank++;
    return rank;
  }

  /** The IR the chip would deliver now, or -1: INT is asserted exactly when this is not -1. */
  highestRequest(): number {
    const requestRank = this.rank(this.irr & ~this.imr);
    if (requestRank === NONE) return -1;
    let inService = this.isr;
    // Special mask mode: a masked in-service level no longer inhibits lower ones.
    if (this.specialMask) inService &= ~this.imr;
    // Special fully nested: the slave may interrupt while its own cascade level is in service.
    if (this.specialFullyNested && this.isMaster) inService &= ~(1 << 2);
    const serviceRank = this.rank(inService);
    return requestRank < serviceRank ? (requestRank + this.lowestPriority + 1) & 7 : -1;
  }

  /** The INTA cycle's effect on this chip for level `irq`. */
  acknowledge(irq: number): void {
    const bit = 1 << irq;
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.lowestPriority = irq;
    } else {
      this.isr |= bit;
    }
    // An edge request is consumed; a level request stays while the input is high.
    if (!this.isLevelTriggered(irq)) this.irr &= ~bit;
  }

  writeCommand(value: number): void {
    if (value & 0x10) {
      this.initialise(value);
    } else if (value & 0x08) {
      // OCW3
      if (value & 0x04) this.poll = true;
      if (value & 0x02) this.readIsr = (value & 1) !== 0;
      if (value & 0x40) this.specialMask = (value & 0x20) !== 0;
    } else {
      this.writeOcw2(value);
    }
  }

  private initialise(icw1: number): void {
    // ICW1 clears the mask, in-service and edge latches and restores default priorities.
    this.inputs = 0;
    this.irr &= this.elcr;
    this.imr = 0;
    this.isr = 0;
    this.lowestPriority = 7;
    this.readIsr = false;
    this.poll = false;
    this.specialMask = false;
    this.autoEoi = false;
    this.rotateOnAutoEoi = false;
    this.specialFullyNested = false;
    this.levelTriggeredAll = (icw1 & 0x08) !== 0;
    this.single = (icw1 & 0x02) !== 0;
    this.expectIcw4 = (icw1 & 0x01) !== 0;
    this.initStep = 2;
  }

  private writeOcw2(value: number): void {
    const level = value & 7;
    switch (value >> 5) {
      case 0: // rotate in automatic EOI mode (clear)
        this.rotateOnAutoEoi = false;
        break;
      case 4: // rotate in automatic EOI mode (set)
        this.rotateOnAutoEoi = true;
        break;
      case 1: // non-specific EOI
      case 5: {
        // rotate on non-specific EOI
        let inService = this.isr;
        if (this.specialMask) inService &= ~this.imr;
        const rank = this.rank(inService);
        if (rank === NONE) break;
        const irq = (rank + this.lowestPriority + 1) & 7;
        this.isr &= ~(1 << irq);
        if (value >> 5 === 5) this.lowestPriority = irq;
        break;
      }
      case 3: // specific EOI
        this.isr &= ~(1 << level);
        break;
      case 7: // rotate on specific EOI
        this.isr &= ~(1 << level);
        this.lowestPriority = level;
        break;
      case 6: // set priority
        this.lowestPriority = level;
        break;
      default: // 2: no operation
        break;
    }
  }

  writeData(value: number): void {
    switch (this.initStep) {
      case 2:
        // x86 mode: the low three bits come from the IR level.
        this.vectorBase = value & 0xf8;
        this.initStep = this.single ? (this.expectIcw4 ? 4 : 0) : 3;
        break;
      case 3:
        this.icw3 = value;
        this.initStep = this.expectIcw4 ? 4 : 0;
        break;
      case 4:
        this.autoEoi = (value & 0x02) !== 0;
        this.specialFullyNested = (value & 0x10) !== 0;
        this.initStep = 0;
        break;
      default:
        this.imr = value;
        break;
    }
  }

  /** The poll command's answer (I bit 7, level in bits 2:0), acknowledging the level as INTA would. */
  pollRead(): number {
    this.poll = false;
    const irq = this.highestRequest();
    if (irq < 0) return 0;
    this.acknowledge(irq);
    return 0x80 | irq;
  }

  readStatus(): number {
    return this.readIsr ? this.isr : this.irr;
  }

  save(): PicChipState {
    return {
      irr: this.irr,
      imr: this.imr,
      isr: this.isr,
      inputs: this.inputs,
      elcr: this.elcr,
      lowestPriority: this.lowestPriority,
      vectorBase: this.vectorBase,
      initStep: this.initStep,
      readIsr: this.readIsr,
      poll: this.poll,
      specialMask: this.specialMask,
      levelTriggeredAll: this.levelTriggeredAll,
      autoEoi: this.autoEoi,
      rotateOnAutoEoi: this.rotateOnAutoEoi,
      specialFullyNested: this.specialFullyNested,
      expectIcw4: this.expectIcw4,
      single: this.single,
      icw3: this.icw3,
    };
  }

  /** Validates everything first, then applies, so a bad state changes nothing. */
  static read(reader: StateReader, elcrMask: number): PicChipState {
    const initStep = reader.uint('initStep', 4);
    if (initStep === 1) reader.fail('initStep', 'expected 0, 2, 3 or 4');
    const elcr = reader.uint('elcr', 0xff);
    if (elcr & ~elcrMask) reader.fail('elcr', `bits outside 0x${elcrMask.toString(16)} cannot be level-triggered`);
    const vectorBase = reader.uint('vectorBase', 0xff);
    if (vectorBase & 7) reader.fail('vectorBase', 'low three bits must be 0');
    return {
      irr: reader.uint('irr', 0xff),
      imr: reader.uint('imr', 0xff),
      isr: reader.uint('isr', 0xff),
      inputs: reader.uint('inputs', 0xff),
      elcr,
      lowestPriority: reader.uint('lowestPriority', 7),
      vectorBase,
      initStep,
      readIsr: reader.boolean('readIsr'),
      poll: reader.boolean('poll'),
      specialMask: reader.boolean('specialMask'),
      levelTriggeredAll: reader.boolean('levelTriggeredAll'),
      autoEoi: reader.boolean('autoEoi'),
      rotateOnAutoEoi: reader.boolean('rotateOnAutoEoi'),
      specialFullyNested: reader.boolean('specialFullyNested'),
      expectIcw4: reader.boolean('expectIcw4'),
      single: reader.boolean('single'),
      icw3: reader.uint('icw3', 0xff),
    };
  }

  apply(state: PicChipState): void {
    Object.assign(this, state);
  }
}
