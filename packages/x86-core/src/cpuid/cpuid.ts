import type { CpuModel } from './models.js';

/** Packs four ASCII characters little-endian, as CPUID returns strings. */
function word(text: string, at: number): number {
  let value = 0;
  for (let i = 0; i < 4; i++) value |= (text.charCodeAt(at + i) & 0xff) << (8 * i);
  return value;
}

/**
 * Leaf 0xD for x87 and SSE state only: sub-leaf 0 gives the supported XCR0
 * bits (3) and the standard-form area size, 576 bytes (legacy region and
 * header) for every XCR0 this core allows; sub-leaf 1 EAX bit 0 is XSAVEOPT
 * (XSAVEC, XGETBV1 and XSAVES stay clear); sub-leaves 2 and up describe AVX and
 * later components, which do not exist here, so they are zero.
 */
function xsaveLeaf(model: CpuModel, subleaf: number, out: Int32Array): void {
  if (subleaf === 0) {
    out[0] = 0b11;
    out[1] = 576;
    out[2] = 576;
  } else if (subleaf === 1) {
    out[0] = model.features.has('xsaveopt') ? 1 : 0;
  }
}

/**
 * Leaf 4 (deterministic cache parameters) as QEMU reports its legacy Intel
 * caches for a guest of one core and one thread (target/i386/cpu.c,
 * legacy_l1d/l1i/l2/l3_cache and encode_cache_cpuid4): 32 KiB 8-way L1d and
 * L1i, 4 MiB 16-way L2, 16 MiB 16-way L3, 64-byte lines, one partition. Each
 * row: type (1 data, 2 instruction, 3 unified), level, ways, sets, EDX (bit 0
 * WBINVD does not flush lower levels of sharing threads, 1 inclusive, 2 complex
 * indexing). EAX[31:26] (cores - 1) and EAX[25:14] (sharing threads - 1) are 0.
 */
const CACHES: ReadonlyArray<readonly [type: number, level: number, ways: number, sets: number, edx: number]> = [
  [1, 1, 8, 64, 1],
  [2, 1, 8, 64, 1],
  [3, 2, 16, 4096, 1],
  [3, 3, 16, 16384, 0b110],
];

function cacheLeaf(subleaf: number, out: Int32Array): void {
  const cache = CACHES[subleaf];
  // Sub-leaves past the last cache have type 0 (no more caches).
  if (cache === undefined) return;
  // EAX bit 8: self-initialising. EBX: line size 64, one partition, the ways (each field minus one).
  out[0] = cache[0] | (cache[1] << 5) | (1 << 8);
  out[1] = 63 | ((cache[2] - 1) << 22);
  out[2] = cache[3] - 1;
  out[3] = cache[4];
}

/**
 * Leaf 0xB (x2APIC topology) for one thread in one core, as QEMU reports it:
 * sub-leaf 0 the SMT level (type 1), 1 the core level (type 2), each with a
 * shift of 0 and one logical processor; from 2 on an invalid level (type 0).
 * ECX[7:0] echoes the sub-leaf, EDX is the x2APIC ID (0).
 */
function topologyLeaf(subleaf: number, out: Int32Array): void {
  out[2] = subleaf & 0xff;
  if (subleaf <= 1) {
    out[1] = 1;
    out[2] |= (subleaf + 1) << 8;
  }
}

/** Leaves 0 and 0x80000000: the highest leaf of the range in EAX, the vendor string in EBX, EDX, ECX. */
function maximumAndVendor(maximum: number, vendor: string, out: Int32Array): void {
  out[0] = maximum;
  out[1] = word(vendor, 0);
  out[3] = word(vendor, 4);
  out[2] = word(vendor, 8);
}

/**
 * The hypervisor range as KVM presents it (Linux's Documentation/virt/kvm/x86/cpuid.rst):
 * 0x40000000 is the highest leaf and the signature "KVMKVMKVM\0\0\0" in EBX, ECX,
 * EDX; 0x40000001 EAX the paravirtual features, EDX the hints (none). A model
 * without KVM features has no hypervisor leaves (QEMU's `kvm=off`): zeros.
 */
function kvmLeaf(model: CpuModel, leaf: number, out: Int32Array): void {
  if (model.kvmFeatures === 0) return;
  if (leaf === 0x40000000) {
    out[0] = 0x40000001;
    out[1] = word('KVMKVMKVM\0\0\0', 0);
    out[2] = word('KVMKVMKVM\0\0\0', 4);
    out[3] = word('KVMKVMKVM\0\0\0', 8);
  } else if (leaf === 0x40000001) {
    out[0] = model.kvmFeatures;
  }
}

/**
 * CPUID leaf `leaf` (sub-leaf `subleaf`) for `model`: EAX, EBX, ECX, EDX in
 * `out[0..3]`. Leaves past the maximum return zeros.
 */
export function cpuidLeaf(model: CpuModel, leaf: number, subleaf: number, out: Int32Array): void {
  out[0] = 0; out[1] = 0; out[2] = 0; out[3] = 0;
  const vendor = model.vendor;
  if (leaf >= 0x40000000 && leaf < 0x80000000) {
    kvmLeaf(model, leaf, out);
    return;
  }
  if (leaf < 0x80000000) {
    if (leaf > model.maxLeaf) return;
    switch (leaf) {
      case 0:
        maximumAndVendor(model.maxLeaf, vendor, out);
        return;
      case 1:
        out[0] = model.signature;
        // One logical processor, APIC ID 0; CLFLUSH line size 64 bytes (8 × 8).
        out[1] = (1 << 16) | (8 << 8);
        out[2] = model.leaf1Ecx;
        out[3] = model.leaf1Edx;
        return;
      case 4:
        // QEMU answers leaf 4 only for Intel vendors (AMD guests use 0x8000001D).
        if (model.vendor === 'GenuineIntel') cacheLeaf(subleaf, out);
        return;
      case 7:
        if (subleaf === 0) {
          out[1] = model.leaf7Ebx;
          out[2] = model.leaf7Ecx ?? 0;
        }
        return;
      case 0xb:
        topologyLeaf(subleaf, out);
        return;
      case 0xd:
        if (model.features.has('xsave')) xsaveLeaf(model, subleaf, out);
        return;
      default:
        return;
    }
  }
  if (leaf > model.maxExtendedLeaf) return;
  switch (leaf) {
    case 0x80000000:
      maximumAndVendor(model.maxExtendedLeaf, vendor, out);
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
