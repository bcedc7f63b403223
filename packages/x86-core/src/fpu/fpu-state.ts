import { classifyExtended, ControlWord, type ExtendedBits, ExtendedClass, INDEFINITE_HIGH, INDEFINITE_SIGN_EXPONENT, SoftFloatResult } from './softfloat/index.js';

/** x87 status word bits (Intel SDM vol. 1, 8.1.3). */
export enum FpuStatus {
  IE = 0x01, DE = 0x02, ZE = 0x04, OE = 0x08, UE = 0x10, PE = 0x20, SF = 0x40, ES = 0x80,
  C0 = 0x100, C1 = 0x200, C2 = 0x400, TOP = 0x3800, C3 = 0x4000, B = 0x8000,
  /** The exception flags IE…PE. */
  exceptions = 0x3f,
  conditions = 0x4700,
}

/** Tag values of the full tag word (SDM vol. 1, figure 8-7). */
export enum FpuTag { valid = 0, zero = 1, special = 2, empty = 3 }

/**
 * The x87 register file and its control registers. Registers are kept by
 * physical number (R0–R7) in softfloat's layout; ST(i) is R((TOP + i) mod 8).
 * Only "empty or not" is stored per register: the full tag word (valid, zero,
 * special) is a function of the contents, so it is computed when FSTENV/FSAVE
 * write it, as the processor's abridged FXSAVE tag shows it does.
 */
export class FpuState {
  readonly signExponent = new Uint16Array(8);
  readonly high = new Uint32Array(8);
  readonly low = new Uint32Array(8);
  /** 1 where the physical register is empty. */
  readonly empty = new Uint8Array(8);
  top = 0;
  control: number = ControlWord.default;
  /** The status word without the TOP field (TOP lives in `top`). */
  status = 0;
  /** FIP/FCS, FDP/FDS and the 11-bit FOP of the last non-control instruction. */
  instructionOffset = 0;
  instructionSelector = 0;
  dataOffset = 0;
  dataSelector = 0;
  opcode = 0;
  /** Scratch for softfloat (one per CPU: nothing is allocated per instruction). */
  readonly result = new SoftFloatResult();
  readonly first: ExtendedBits = { signExponent: 0, high: 0, low: 0 };
  readonly second: ExtendedBits = { signExponent: 0, high: 0, low: 0 };
  /** Scratch for classifying a register when the tag word is built. */
  private readonly tagScratch: ExtendedBits = { signExponent: 0, high: 0, low: 0 };
  /**
   * FRSTOR/FXRSTOR/XRSTOR read the whole register image here before changing
   * anything: three words per register in 0–23, the FXSAVE header fields in 24–31.
   */
  readonly restoreScratch = new Uint32Array(32);

  constructor() {
    this.initialize();
  }

  /** FNINIT: control 0x037F, status 0, every register empty, pointers and opcode cleared. */
  initialize(): void {
    this.control = ControlWord.default;
    this.status = 0;
    this.top = 0;
    this.empty.fill(1);
    this.instructionOffset = 0;
    this.instructionSelector = 0;
    this.dataOffset = 0;
    this.dataSelector = 0;
    this.opcode = 0;
  }

  /**
   * Power-up/RESET state (SDM vol. 3, table 9-1): control 0x0040, status 0,
   * tag word 0x5555 (every register holds +0.0). INIT leaves the x87
   * unchanged, so the CPU calls this only at power-up and RESET.
   */
  powerOn(): void {
    this.initialize();
    this.control = 0x0040;
    this.signExponent.fill(0);
    this.high.fill(0);
    this.low.fill(0);
    this.empty.fill(0);
  }

  /** The status word with TOP in bits 13:11. */
  statusWord(): number {
    return (this.status & ~FpuStatus.TOP) | (this.top << 11);
  }

  setStatusWord(value: number): void {
    this.status = value & 0xffff & ~FpuStatus.TOP;
    this.top = (value >> 11) & 7;
  }

  /** The physical register of ST(i). */
  physical(stackIndex: number): number {
    return (this.top + stackIndex) & 7;
  }

  isEmpty(stackIndex: number): boolean {
    return this.empty[(this.top + stackIndex) & 7] === 1;
  }

  /** Copies ST(i) into `into`. */
  read(stackIndex: number, into: ExtendedBits): void {
    const register = (this.top + stackIndex) & 7;
    into.signExponent = this.signExponent[register]!;
    into.high = this.high[register]!;
    into.low = this.low[register]!;
  }

  /** Writes ST(i) and marks it in use. */
  write(stackIndex: number, signExponent: number, high: number, low: number): void {
    const register = (this.top + stackIndex) & 7;
    this.signExponent[register] = signExponent;
    this.high[register] = high;
    this.low[register] = low;
    this.empty[register] = 0;
  }

  writeIndefinite(stackIndex: number): void {
    this.write(stackIndex, INDEFINITE_SIGN_EXPONENT, INDEFINITE_HIGH, 0);
  }

  /** Decrements TOP (the caller has checked that the new ST(0) is empty). */
  push(): void {
    this.top = (this.top - 1) & 7;
  }

  /** Marks ST(0) empty and increments TOP. */
  pop(): void {
    this.empty[this.top] = 1;
    this.top = (this.top + 1) & 7;
  }

  /** The 2-bit tag of physical register `register`, derived from its contents. */
  tagOf(register: number): number {
    if (this.empty[register] === 1) return FpuTag.empty;
    const value = this.tagScratch;
    value.signExponent = this.signExponent[register]!;
    value.high = this.high[register]!;
    value.low = this.low[register]!;
    const kind = classifyExtended(value);
    if (kind === ExtendedClass.zero) return FpuTag.zero;
    if (kind === ExtendedClass.normal) return FpuTag.valid;
    return FpuTag.special;
  }

  /** The full 16-bit tag word (FSTENV, FSAVE). */
  tagWord(): number {
    let word = 0;
    for (let register = 0; register < 8; register++) word |= this.tagOf(register) << (register * 2);
    return word;
  }

  /** FLDENV/FRSTOR: only "empty" (11) is taken from a tag; the rest follows the contents. */
  setTagWord(word: number): void {
    for (let register = 0; register < 8; register++) this.empty[register] = ((word >> (register * 2)) & 3) === 3 ? 1 : 0;
  }

  /** The abridged tag byte of FXSAVE: bit i set where R(i) is not empty. */
  abridgedTag(): number {
    let byte = 0;
    for (let register = 0; register < 8; register++) if (this.empty[register] === 0) byte |= 1 << register;
    return byte;
  }
}
