/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum iSCSI,
 * ext4 and QEMU's multifd use. Slicing-by-16: sixteen 256-entry tables let
 * the loop consume sixteen bytes (four aligned little-endian words; host and
 * guest are little-endian in tsvirt) per step, which keeps checksumming off
 * the critical path of a gigabyte stream.
 */
const POLYNOMIAL = 0x82f63b78;
const SLICES = 16;

function buildTables(): Uint32Array[] {
  const tables = Array.from({ length: SLICES }, () => new Uint32Array(256));
  const first = tables[0]!;
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
    first[byte] = crc >>> 0;
  }
  for (let byte = 0; byte < 256; byte++) {
    let crc = first[byte]!;
    for (let slice = 1; slice < SLICES; slice++) {
      crc = (crc >>> 8) ^ first[crc & 0xff]!;
      tables[slice]![byte] = crc >>> 0;
    }
  }
  return tables;
}

/** Immutable lookup tables, computed once; they hold no state. */
const [T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15] = buildTables() as [
  Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array,
  Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array,
];

/**
 * Continues a CRC-32C over `bytes`. Start with `crc32c(bytes)` and chain
 * `crc32c(more, previous)`; the result is the standard finalised value.
 */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0;
  let index = 0;
  const length = bytes.length;
  // Bytes up to a 4-byte boundary one at a time, then whole words through an aligned view.
  while (index < length && ((bytes.byteOffset + index) & 3) !== 0) crc = (crc >>> 8) ^ T0[(crc ^ bytes[index++]!) & 0xff]!;
  const wordCount = ((length - index) >>> 4) << 2;
  if (wordCount > 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset + index, wordCount);
    for (let word = 0; word < wordCount; word += 4) {
      const a = crc ^ words[word]!;
      const b = words[word + 1]!;
      const c = words[word + 2]!;
      const d = words[word + 3]!;
      crc =
        T15[a & 0xff]! ^ T14[(a >>> 8) & 0xff]! ^ T13[(a >>> 16) & 0xff]! ^ T12[a >>> 24]! ^
        T11[b & 0xff]! ^ T10[(b >>> 8) & 0xff]! ^ T9[(b >>> 16) & 0xff]! ^ T8[b >>> 24]! ^
        T7[c & 0xff]! ^ T6[(c >>> 8) & 0xff]! ^ T5[(c >>> 16) & 0xff]! ^ T4[c >>> 24]! ^
        T3[d & 0xff]! ^ T2[(d >>> 8) & 0xff]! ^ T1[(d >>> 16) & 0xff]! ^ T0[d >>> 24]!;
    }
    index += wordCount * 4;
  }
  while (index < length) crc = (crc >>> 8) ^ T0[(crc ^ bytes[index++]!) & 0xff]!;
  return ~crc >>> 0;
}
