/**
 * The MTRR settings a PC BIOS leaves for the OS (SeaBIOS does this on QEMU's
 * pc, so a kernel booted with `-kernel` finds them): RAM write-back, the VGA
 * window uncached, the option-ROM/BIOS area write-protected, and the PCI hole
 * up to 4 GiB uncached by one variable range. Without them Linux reports the
 * MTRRs disabled and skips PAT setup (no write-combining).
 */

/** One WRMSR: MSR index and 64-bit value. */
export interface MsrWrite {
  readonly index: number;
  readonly value: bigint;
}

export const MtrrMsr = {
  CAP: 0xfe,
  PHYS_BASE_0: 0x200,
  FIX_64K_00000: 0x250,
  FIX_16K_80000: 0x258,
  FIX_16K_A0000: 0x259,
  FIX_4K_C0000: 0x268,
  DEF_TYPE: 0x2ff,
} as const;

export const MemoryType = { UC: 0, WC: 1, WT: 4, WP: 5, WB: 6 } as const;

/** MTRRdefType: E (all MTRRs on) and FE (fixed ranges on). */
const DEF_TYPE_ENABLE = 0xc00n;
/** MTRRphysMask bit 11: the pair is in use. */
const PHYS_MASK_VALID = 0x800n;

export interface MtrrOptions {
  /** Bytes of RAM from 0 up (the RAM below 4 GiB). */
  readonly ramBelow4G: number;
  /** Start of the uncached range that runs to 4 GiB; its size must be a power of two it is aligned to. */
  readonly uncachedFrom: number;
  /** MAXPHYADDR (CPUID 0x80000008 EAX[7:0]), which bounds the variable-range mask. */
  readonly physicalAddressBits: number;
  /** MTRRcap VCNT: variable ranges to clear. */
  readonly variableRanges: number;
}

/** Eight memory types, one byte each, as a fixed-range MTRR holds them. */
function packTypes(typeOf: (index: number) => number): bigint {
  let value = 0n;
  for (let i = 7; i >= 0; i--) value = (value << 8n) | BigInt(typeOf(i));
  return value;
}

/** The MSR writes, in order, that program the MTRRs as a PC BIOS does: disable, fixed ranges, variable ranges, enable. */
export function pcMtrrSettings(options: MtrrOptions): MsrWrite[] {
  const { ramBelow4G, uncachedFrom, physicalAddressBits, variableRanges } = options;
  const size = 2 ** 32 - uncachedFrom;
  if (!Number.isInteger(uncachedFrom) || size <= 0 || (size & (size - 1)) !== 0 || uncachedFrom % size !== 0) {
    throw new RangeError(`the uncached range from 0x${uncachedFrom.toString(16)} to 4 GiB is not a naturally aligned power of two`);
  }
  if (!Number.isInteger(physicalAddressBits) || physicalAddressBits < 32 || physicalAddressBits > 52) throw new RangeError(`bad physical address width ${physicalAddressBits}`);
  if (!Number.isInteger(variableRanges) || variableRanges < 1 || variableRanges > 255) throw new RangeError(`bad variable range count ${variableRanges}`);
  // A fixed range is write-back (or write-protected above 0xC0000) only where RAM covers all of it.
  const ramType = (start: number, length: number, type: number) => (ramBelow4G >= start + length ? type : MemoryType.UC);
  const writes: MsrWrite[] = [{ index: MtrrMsr.DEF_TYPE, value: 0n }];
  writes.push({ index: MtrrMsr.FIX_64K_00000, value: packTypes((i) => ramType(i * 0x1_0000, 0x1_0000, MemoryType.WB)) });
  writes.push({ index: MtrrMsr.FIX_16K_80000, value: packTypes((i) => ramType(0x8_0000 + i * 0x4000, 0x4000, MemoryType.WB)) });
  // 0xA0000-0xBFFFF is the VGA window: uncached.
  writes.push({ index: MtrrMsr.FIX_16K_A0000, value: 0n });
  for (let block = 0; block < 8; block++) {
    const start = 0xc_0000 + block * 0x8000;
    writes.push({ index: MtrrMsr.FIX_4K_C0000 + block, value: packTypes((i) => ramType(start + i * 0x1000, 0x1000, MemoryType.WP)) });
  }
  for (let range = 0; range < variableRanges; range++) {
    writes.push({ index: MtrrMsr.PHYS_BASE_0 + 2 * range, value: 0n }, { index: MtrrMsr.PHYS_BASE_0 + 2 * range + 1, value: 0n });
  }
  const addressMask = (1n << BigInt(physicalAddressBits)) - 1n;
  writes.push(
    { index: MtrrMsr.PHYS_BASE_0, value: BigInt(uncachedFrom) | BigInt(MemoryType.UC) },
    { index: MtrrMsr.PHYS_BASE_0 + 1, value: (-BigInt(size) & addressMask) | PHYS_MASK_VALID },
  );
  writes.push({ index: MtrrMsr.DEF_TYPE, value: DEF_TYPE_ENABLE | BigInt(MemoryType.WB) });
  return writes;
}
