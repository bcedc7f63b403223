import type { CpuModel } from './models.js';

/** Packs four ASCII characters little-endian, as CPUID returns strings. */
function word(text: string, at: number): number {
  let value = 0;
  for (let i = 0; i < 4; i++) value |= (text.charCodeAt(at + i) & 0xff) << (8 * i);
  return value;
}

/**
 * CPUID leaf `leaf` (sub-leaf `subleaf`) for `model`: EAX, EBX, ECX, EDX in
 * `out[0..3]`. Leaves past the maximum return zeros.
 */
export function cpuidLeaf(model: CpuModel, leaf: number, subleaf: number, out: Int32Array): void {
  out[0] = 0; out[1] = 0; out[2] = 0; out[3] = 0;
  const vendor = model.vendor;
  if (leaf < 0x80000000) {
    if (leaf > model.maxLeaf) return;
    switch (leaf) {
      case 0:
        out[0] = model.maxLeaf;
        out[1] = word(vendor, 0);
        out[3] = word(vendor, 4);
        out[2] = word(vendor, 8);
        return;
      case 1:
        out[0] = model.signature;
        // One logical processor, APIC ID 0; CLFLUSH line size 64 bytes (8 × 8).
        out[1] = (1 << 16) | (8 << 8);
        out[2] = model.leaf1Ecx;
        out[3] = model.leaf1Edx;
        return;
      case 7:
        if (subleaf === 0) out[1] = model.leaf7Ebx;
        return;
      default:
        return;
    }
  }
  if (leaf > model.maxExtendedLeaf) return;
  switch (leaf) {
    case 0x80000000:
      out[0] = model.maxExtendedLeaf;
      out[1] = word(vendor, 0);
      out[3] = word(vendor, 4);
      out[2] = word(vendor, 8);
      return;
    case 0x80000001:
      out[2] = model.extendedEcx;
      out[3] = model.extendedEdx;
      return;
    case 0x80000002: case 0x80000003: case 0x80000004: {
      const brand = model.brand.padEnd(48, '\0').slice(0, 48);
      const base = (leaf - 0x80000002) * 16;
      for (let i = 0; i < 4; i++) out[i] = word(brand, base + 4 * i);
      return;
    }
    case 0x80000008:
      out[0] = (48 << 8) | model.physicalAddressBits;
      return;
    default:
      return;
  }
}
