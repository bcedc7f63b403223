/** Words in a 4 KiB page. */
export const PAGE_WORDS = 1024;

/**
 * A keyed 53-bit digest of one page, read as 1024 little-endian words from
 * `words` starting at word `start`. It is a filter, never a proof of
 * equality: every merge still compares the bytes. The key (`seed`) is per
 * scanner so a guest cannot precompute pages that collide; the index also
 * caps how many candidates one lookup compares, which bounds the cost even
 * if it could.
 *
 * Two 32-bit lanes run over the page in one pass (a multiply-xor chain and a
 * rotate-multiply chain), each finished with the MurmurHash3 avalanche; the
 * key is the first lane's 32 bits above the second lane's top 21 bits. Each
 * step of a lane is a bijection of its state, so pages differing in one word
 * always get different keys; the lanes are finished separately because a
 * top-bit difference hits both alike and would cancel if they were mixed.
 */
export function pageChecksum(words: Uint32Array, start: number, seed: number): number {
  let a = (seed ^ 0x811c9dc5) | 0;
  let b = (Math.imul(seed, 0x9e3779b1) ^ 0x85ebca6b) | 0;
  const end = start + PAGE_WORDS;
  for (let i = start; i < end; i += 4) {
    const w0 = words[i]!;
    const w1 = words[i + 1]!;
    const w2 = words[i + 2]!;
    const w3 = words[i + 3]!;
    a = Math.imul(a ^ w0, 0x01000193);
    b = Math.imul(((b << 5) | (b >>> 27)) ^ w0, 0xcc9e2d51);
    a = Math.imul(a ^ w1, 0x01000193);
    b = Math.imul(((b << 5) | (b >>> 27)) ^ w1, 0xcc9e2d51);
    a = Math.imul(a ^ w2, 0x01000193);
    b = Math.imul(((b << 5) | (b >>> 27)) ^ w2, 0xcc9e2d51);
    a = Math.imul(a ^ w3, 0x01000193);
    b = Math.imul(((b << 5) | (b >>> 27)) ^ w3, 0xcc9e2d51);
  }
  return (avalanche(a) >>> 0) * 0x20_0000 + (avalanche(b) >>> 11);
}

function avalanche(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
