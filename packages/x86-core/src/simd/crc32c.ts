/*
 * CRC32 of SSE4.2 (Intel SDM vol. 2, CRC32): the Castagnoli polynomial
 * 0x1EDC6F41 in its bit-reflected form 0x82F63B78, with neither the initial
 * nor the final inversion (the instruction leaves both to software).
 */

const REFLECTED_POLYNOMIAL = 0x82f63b78;

/** The CRC of each byte value: a constant table, filled once when the module loads. */
const BYTE_TABLE = new Uint32Array(256);
for (let value = 0; value < 256; value++) {
  let crc = value;
  for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ REFLECTED_POLYNOMIAL : crc >>> 1;
  BYTE_TABLE[value] = crc;
}

/** Folds the low `bytes` bytes (1, 2 or 4) of `data`, least significant first, into `crc`; returns the new CRC (unsigned). */
export function crc32cUpdate(crc: number, data: number, bytes: number): number {
  let value = crc >>> 0;
  let rest = data >>> 0;
  for (let i = 0; i < bytes; i++) {
    value = BYTE_TABLE[(value ^ rest) & 0xff]! ^ (value >>> 8);
    rest >>>= 8;
  }
  return value >>> 0;
}
