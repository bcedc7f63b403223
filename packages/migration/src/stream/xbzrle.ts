import { PAGE_SIZE } from '@tsvirt/interfaces';

/**
 * XBZRLE (Xor Based Zero Run Length Encoding), the delta QEMU sends for a
 * page it sent before: a sequence of `zrun nzrun bytes` where `zrun` counts
 * unchanged bytes, `nzrun` changed ones, both as unsigned LEB128, followed
 * by the new values of the changed bytes. A trailing unchanged run is
 * omitted; an empty delta means the page did not change.
 */

/**
 * Encodes the difference from `old` to `current` (both one page) into `out`.
 * Returns the encoded length, or -1 when it would not fit in `out` (the
 * caller then sends the page whole).
 */
export function xbzrleEncode(old: Uint8Array, current: Uint8Array, out: Uint8Array): number {
  const size = current.length;
  let position = 0;
  let length = 0;
  while (position < size) {
    let zeroRun = 0;
    while (position + zeroRun < size && old[position + zeroRun] === current[position + zeroRun]) zeroRun++;
    if (position + zeroRun === size) break;
    position += zeroRun;
    let changedRun = 0;
    while (position + changedRun < size && old[position + changedRun] !== current[position + changedRun]) changedRun++;
    length = putUleb(out, length, zeroRun);
    if (length < 0) return -1;
    length = putUleb(out, length, changedRun);
    if (length < 0 || length + changedRun > out.length) return -1;
    out.set(current.subarray(position, position + changedRun), length);
    length += changedRun;
    position += changedRun;
  }
  return length;
}

/**
 * Applies `delta` to `page` in place. Returns an error message for a
 * malformed delta (runs past the page, overlong numbers, an empty changed
 * run, a dangling unchanged run), `undefined` on success. On error `page`
 * may be partly updated; callers decode into a scratch copy.
 */
export function xbzrleDecode(delta: Uint8Array, page: Uint8Array): string | undefined {
  let offset = 0;
  let position = 0;
  while (offset < delta.length) {
    const zeroRun = readUleb(delta, offset);
    if (zeroRun === undefined) return `bad run length at delta byte ${offset}`;
    offset = zeroRun.next;
    position += zeroRun.value;
    if (offset >= delta.length) return 'delta ends after an unchanged run';
    const changedRun = readUleb(delta, offset);
    if (changedRun === undefined) return `bad run length at delta byte ${offset}`;
    offset = changedRun.next;
    if (changedRun.value === 0) return 'empty changed run';
    if (position + changedRun.value > page.length) return `changed run ends at byte ${position + changedRun.value}, past the page`;
    if (offset + changedRun.value > delta.length) return 'delta ends inside a changed run';
    page.set(delta.subarray(offset, offset + changedRun.value), position);
    offset += changedRun.value;
    position += changedRun.value;
  }
  return undefined;
}

function putUleb(out: Uint8Array, at: number, value: number): number {
  let rest = value;
  let index = at;
  do {
    if (index >= out.length) return -1;
    const low = rest & 0x7f;
    rest >>>= 7;
    out[index++] = rest !== 0 ? low | 0x80 : low;
  } while (rest !== 0);
  return index;
}

/** Run lengths never exceed a page, so two LEB128 bytes (up to 16383) are the most a valid delta uses. */
function readUleb(bytes: Uint8Array, at: number): { value: number; next: number } | undefined {
  const first = bytes[at]!;
  if ((first & 0x80) === 0) return { value: first, next: at + 1 };
  if (at + 1 >= bytes.length) return undefined;
  const second = bytes[at + 1]!;
  if ((second & 0x80) !== 0) return undefined;
  const value = (first & 0x7f) | (second << 7);
  return value <= PAGE_SIZE ? { value, next: at + 2 } : undefined;
}
