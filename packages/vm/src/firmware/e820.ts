/** BIOS e820 memory map entry types (ACPI spec, "Address Range Types"). */
export const E820Type = {
  Ram: 1,
  Reserved: 2,
  Acpi: 3,
  Nvs: 4,
  Unusable: 5,
} as const;
export type E820Type = (typeof E820Type)[keyof typeof E820Type];

export interface E820Entry {
  readonly start: number;
  readonly size: number;
  readonly type: E820Type;
}

/**
 * Builds a sorted, non-overlapping e820 map from RAM regions and reserved
 * ranges carved out of them (a reserved range wins over RAM where they
 * overlap). Adjacent entries of the same type are merged.
 */
export function buildE820(ram: ReadonlyArray<{ start: number; size: number }>, reserved: readonly E820Entry[]): E820Entry[] {
  const points = new Set<number>();
  for (const range of [...ram, ...reserved]) {
    points.add(range.start);
    points.add(range.start + range.size);
  }
  const sorted = [...points].sort((a, b) => a - b);
  const entries: E820Entry[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) {
    const start = sorted[i]!;
    const end = sorted[i + 1]!;
    const covering = reserved.filter((range) => range.start <= start && range.start + range.size >= end);
    const isRam = ram.some((range) => range.start <= start && range.start + range.size >= end);
    // The most restrictive reserved type wins (ACPI data over plain reserved is not expected to overlap).
    const type = covering.length > 0 ? covering.reduce((a, b) => (a.type > b.type ? a : b)).type : isRam ? E820Type.Ram : undefined;
    if (type === undefined) continue;
    const last = entries[entries.length - 1];
    if (last !== undefined && last.type === type && last.start + last.size === start) entries[entries.length - 1] = { start: last.start, size: end - last.start, type };
    else entries.push({ start, size: end - start, type });
  }
  return entries;
}

/** The 20-byte entries of `boot_params.e820_table`: u64 address, u64 size, u32 type. */
export function encodeE820(entries: readonly E820Entry[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * 20);
  const view = new DataView(bytes.buffer);
  entries.forEach((entry, index) => {
    view.setBigUint64(index * 20, BigInt(entry.start), true);
    view.setBigUint64(index * 20 + 8, BigInt(entry.size), true);
    view.setUint32(index * 20 + 16, entry.type, true);
  });
  return bytes;
}
