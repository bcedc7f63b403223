/** Page bitmaps on the wire: little-endian u32 words, bit `p % 32` of word `p / 32` is page `p`. */
export function encodeBitmap(bitmap: Uint32Array): Uint8Array {
  const bytes = new Uint8Array(bitmap.length * 4);
  const view = new DataView(bytes.buffer);
  bitmap.forEach((word, index) => view.setUint32(index * 4, word, true));
  return bytes;
}

/** Decodes a bitmap of exactly `pageCount` pages; `undefined` for a wrong length or bits past the last page. */
export function decodeBitmap(bytes: Uint8Array, pageCount: number): Uint32Array | undefined {
  const words = Math.ceil(pageCount / 32);
  if (bytes.length !== words * 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bitmap = new Uint32Array(words);
  for (let index = 0; index < words; index++) bitmap[index] = view.getUint32(index * 4, true);
  const tail = pageCount % 32;
  if (tail !== 0 && bitmap[words - 1]! >>> tail !== 0) return undefined;
  return bitmap;
}
