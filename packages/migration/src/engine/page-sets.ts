import { PAGE_SIZE, guestAddress, type GuestMemory } from '@tsvirt/interfaces';
import { countBits } from '@tsvirt/memory';

/** A page bitmap (the dirty log's format) with every RAM page of `memory` set. */
export function allRamPages(memory: GuestMemory): Uint32Array {
  const pageCount = Math.floor(memory.size / PAGE_SIZE);
  const bitmap = new Uint32Array(Math.ceil(pageCount / 32));
  for (let page = 0; page < pageCount; page++) {
    if (memory.isRam(guestAddress(page * PAGE_SIZE), PAGE_SIZE)) bitmap[page >>> 5]! |= 1 << (page & 31);
  }
  return bitmap;
}

export function countPages(bitmap: Uint32Array): number {
  return countBits(bitmap);
}
