import type { MsiTarget } from '@tsvirt/interfaces';

/** Where an MSI capability sits in configuration space and what it offers. */
export interface MsiLayout {
  readonly offset: number;
  readonly vectors: number;
  readonly address64: boolean;
  readonly perVectorMask: boolean;
}

/** Bytes the MSI capability occupies (PCI 3.0, 6.8.1). */
export function msiCapabilitySize(address64: boolean, perVectorMask: boolean): number {
  return (address64 ? 14 : 10) + (perVectorMask ? 10 : 0);
}

/** Field offsets inside the MSI capability. */
export function msiFields(layout: Pick<MsiLayout, 'address64' | 'offset'>): { control: number; addressLow: number; addressHigh: number; data: number; mask: number; pending: number } {
  const base = layout.offset;
  const data = base + (layout.address64 ? 0x0c : 0x08);
  const mask = base + (layout.address64 ? 0x10 : 0x0c);
  return { control: base + 2, addressLow: base + 4, addressHigh: base + 8, data, mask, pending: mask + 4 };
}

/** Lays out the capability's initial bytes and write masks in `config`/`writeMask`. */
export function initMsi(layout: MsiLayout, config: DataView, writeMask: DataView): void {
  const fields = msiFields(layout);
  const capable = Math.log2(layout.vectors);
  config.setUint16(fields.control, (capable << 1) | (layout.address64 ? 0x80 : 0) | (layout.perVectorMask ? 0x100 : 0), true);
  writeMask.setUint16(fields.control, 0x0071, true);
  writeMask.setUint32(fields.addressLow, 0xffff_fffc, true);
  if (layout.address64) writeMask.setUint32(fields.addressHigh, 0xffff_ffff, true);
  writeMask.setUint16(fields.data, 0xffff, true);
  if (layout.perVectorMask) writeMask.setUint32(fields.mask, layout.vectors === 32 ? 0xffff_ffff : (1 << layout.vectors) - 1, true);
}

/**
 * MSI delivery: the enabled vector count (Multiple Message Enable, capped at
 * what the function offers), the vector number merged into the low data
 * bits, per-vector masking with pending bits (PCI 3.0, 6.8.3.4).
 */
export class MsiDelivery {
  private readonly fields: ReturnType<typeof msiFields>;

  constructor(
    private readonly layout: MsiLayout,
    private readonly config: DataView,
    private readonly target: MsiTarget,
  ) {
    this.fields = msiFields(layout);
  }

  get enabled(): boolean {
    return (this.config.getUint16(this.fields.control, true) & 1) !== 0;
  }

  enabledVectors(): number {
    const enable = (this.config.getUint16(this.fields.control, true) >> 4) & 7;
    return Math.min(1 << enable, this.layout.vectors);
  }

  signal(vector: number): void {
    if (!this.enabled || !Number.isInteger(vector) || vector < 0 || vector >= this.enabledVectors()) return;
    const bit = 2 ** vector;
    if (this.layout.perVectorMask && (this.config.getUint32(this.fields.mask, true) & bit) !== 0) {
      this.config.setUint32(this.fields.pending, (this.config.getUint32(this.fields.pending, true) | bit) >>> 0, true);
      return;
    }
    this.send(vector);
  }

  /** After a configuration write: delivers pending vectors that are now unmasked. */
  afterWrite(): void {
    if (!this.layout.perVectorMask || !this.enabled) return;
    const pending = this.config.getUint32(this.fields.pending, true);
    if (pending === 0) return;
    const mask = this.config.getUint32(this.fields.mask, true);
    const count = this.enabledVectors();
    for (let vector = 0; vector < count; vector++) {
      const bit = 2 ** vector;
      if ((pending & bit) !== 0 && (mask & bit) === 0) {
        this.config.setUint32(this.fields.pending, (this.config.getUint32(this.fields.pending, true) & ~bit) >>> 0, true);
        this.send(vector);
      }
    }
  }

  pendingBits(): number {
    return this.layout.perVectorMask ? this.config.getUint32(this.fields.pending, true) : 0;
  }

  setPendingBits(bits: number): void {
    if (this.layout.perVectorMask) this.config.setUint32(this.fields.pending, bits >>> 0, true);
  }

  private send(vector: number): void {
    const low = (this.config.getUint32(this.fields.addressLow, true) & 0xffff_fffc) >>> 0;
    const high = this.layout.address64 ? this.config.getUint32(this.fields.addressHigh, true) : 0;
    const count = this.enabledVectors();
    const data = this.config.getUint16(this.fields.data, true);
    this.target.deliver(high * 0x1_0000_0000 + low, ((data & ~(count - 1)) | vector) & 0xffff);
  }
}
