import type { AccessSize, MsiTarget } from '@tsvirt/interfaces';

export const MSIX_CAPABILITY_SIZE = 12;
const FUNCTION_MASK = 0x4000;
const ENABLE = 0x8000;

/** Where the MSI-X capability lives and what it declares. */
export interface MsixLayout {
  readonly offset: number;
  readonly vectors: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

export function initMsix(layout: MsixLayout, config: DataView, writeMask: DataView): void {
  config.setUint16(layout.offset + 2, (layout.vectors - 1) & 0x7ff, true);
  writeMask.setUint16(layout.offset + 2, ENABLE | FUNCTION_MASK, true);
  config.setUint32(layout.offset + 4, (layout.tableOffset & ~7) | layout.tableBar, true);
  config.setUint32(layout.offset + 8, (layout.pbaOffset & ~7) | layout.pbaBar, true);
}

/**
 * MSI-X state outside configuration space: the vector table (address,
 * data, vector control per entry) and the pending bit array, both served
 * inside a BAR (PCI 3.0, 6.8.2). Table and PBA accept any width; the guest
 * is expected to use dwords.
 */
export class MsixState {
  /** Four dwords per vector: address low, address high, data, vector control. */
  readonly table: Uint32Array;
  readonly pending: Uint32Array;
  readonly tableLength: number;
  readonly pbaLength: number;

  constructor(
    readonly layout: MsixLayout,
    private readonly config: DataView,
    private readonly target: MsiTarget,
    private readonly busMaster: () => boolean,
  ) {
    this.table = new Uint32Array(layout.vectors * 4);
    this.pending = new Uint32Array(Math.ceil(layout.vectors / 32) + (Math.ceil(layout.vectors / 32) % 2));
    this.tableLength = layout.vectors * 16;
    this.pbaLength = this.pending.length * 4;
    this.reset();
  }

  reset(): void {
    this.table.fill(0);
    for (let vector = 0; vector < this.layout.vectors; vector++) this.table[vector * 4 + 3] = 1;
    this.pending.fill(0);
  }

  get enabled(): boolean {
    return (this.config.getUint16(this.layout.offset + 2, true) & ENABLE) !== 0;
  }

  private get functionMasked(): boolean {
    return (this.config.getUint16(this.layout.offset + 2, true) & FUNCTION_MASK) !== 0;
  }

  signal(vector: number): void {
    if (!this.enabled || !Number.isInteger(vector) || vector < 0 || vector >= this.layout.vectors) return;
    if (this.functionMasked || (this.table[vector * 4 + 3]! & 1) !== 0) {
      this.pending[vector >> 5] = (this.pending[vector >> 5]! | (1 << (vector & 31))) >>> 0;
      return;
    }
    this.send(vector);
  }

  /** Delivers pending vectors whose masks are now clear (after a control or table write). */
  flushPending(): void {
    if (!this.enabled || this.functionMasked) return;
    for (let word = 0; word < this.pending.length; word++) {
      if (this.pending[word] === 0) continue;
      for (let bit = 0; bit < 32; bit++) {
        const vector = word * 32 + bit;
        if (vector >= this.layout.vectors || (this.pending[word]! & (1 << bit)) === 0) continue;
        if ((this.table[vector * 4 + 3]! & 1) !== 0) continue;
        this.pending[word] = (this.pending[word]! & ~(1 << bit)) >>> 0;
        this.send(vector);
      }
    }
  }

  readTable(offset: number, size: AccessSize): number {
    return readWords(this.table, offset, size);
  }

  writeTable(offset: number, size: AccessSize, value: number): void {
    writeWords(this.table, offset, size, value);
    // Only bit 0 of vector control is defined; the rest is reserved, read as 0.
    const word = offset >> 2;
    if ((word & 3) === 3) this.table[word] = this.table[word]! & 1;
    this.flushPending();
  }

  readPending(offset: number, size: AccessSize): number {
    return readWords(this.pending, offset, size);
  }

  private send(vector: number): void {
    if (!this.busMaster()) return;
    const base = vector * 4;
    this.target.deliver(this.table[base + 1]! * 0x1_0000_0000 + ((this.table[base]! & 0xffff_fffc) >>> 0), this.table[base + 2]!);
  }
}

function readWords(words: Uint32Array, offset: number, size: AccessSize): number {
  let value = 0;
  for (let i = 0; i < size; i++) {
    const at = offset + i;
    const word = words[at >> 2] ?? 0;
    value |= ((word >>> ((at & 3) * 8)) & 0xff) << (8 * i);
  }
  return value >>> 0;
}

function writeWords(words: Uint32Array, offset: number, size: AccessSize, value: number): void {
  for (let i = 0; i < size; i++) {
    const at = offset + i;
    const index = at >> 2;
    if (index >= words.length) return;
    const shift = (at & 3) * 8;
    words[index] = ((words[index]! & ~(0xff << shift)) | (((value >>> (8 * i)) & 0xff) << shift)) >>> 0;
  }
}
