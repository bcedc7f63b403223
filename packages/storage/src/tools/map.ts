import type { OpenedImage } from '../open.js';
import { Qcow2Backend } from '../qcow2/qcow2.js';
import { RawBackend } from '../raw.js';

/** One line of `qemu-img map --output=json`. */
export interface MapEntry {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  offset?: number;
}

/** Where each byte of the disk comes from, through the backing chain (depth 0 is the top image). */
export async function mapImage(image: OpenedImage): Promise<MapEntry[]> {
  const layers: OpenedImage[] = [];
  for (let layer: OpenedImage | undefined = image; layer !== undefined; layer = layer.backing) layers.push(layer);
  const entries: MapEntry[] = [];
  const push = (entry: MapEntry) => {
    const last = entries[entries.length - 1];
    const contiguous =
      last !== undefined &&
      last.depth === entry.depth &&
      last.present === entry.present &&
      last.zero === entry.zero &&
      last.data === entry.data &&
      (last.offset === undefined) === (entry.offset === undefined) &&
      (entry.offset === undefined || last.offset! + last.length === entry.offset);
    if (contiguous) last.length += entry.length;
    else entries.push(entry);
  };
  const visit = async (depth: number, start: number, length: number): Promise<void> => {
    const layer = layers[depth]!;
    const backend = layer.backend;
    // Callers keep the range inside this layer.
    const inside = Math.max(0, Math.min(length, backend.size - start));
    if (backend instanceof RawBackend) {
      // A raw file's holes read as zeros and take no space: QEMU maps them as zero, not data.
      for (const extent of await backend.blockStatus(start, inside)) {
        push({ start: extent.offset, length: extent.length, depth, present: true, zero: extent.zero, data: extent.allocated, offset: extent.offset });
      }
    } else if (!(backend instanceof Qcow2Backend)) {
      push({ start, length: inside, depth, present: true, zero: false, data: true, offset: start });
    } else {
      for (const extent of await backend.map(start, inside)) {
        if (extent.kind === 'data') push({ start: extent.offset, length: extent.length, depth, present: true, zero: false, data: true, offset: extent.host! });
        else if (extent.kind === 'compressed') push({ start: extent.offset, length: extent.length, depth, present: true, zero: false, data: true });
        else if (extent.kind === 'zero') push({ start: extent.offset, length: extent.length, depth, present: true, zero: true, data: false, ...(extent.host !== undefined ? { offset: extent.host } : {}) });
        else if (depth + 1 < layers.length) {
          // What lies past the end of a shorter backing file QEMU attributes to this layer.
          const below = layers[depth + 1]!.backend.size;
          const inBelow = Math.max(0, Math.min(extent.length, below - extent.offset));
          if (inBelow > 0) await visit(depth + 1, extent.offset, inBelow);
          if (inBelow < extent.length) {
            const start = extent.offset + inBelow;
            push({ start, length: extent.length - inBelow, depth, present: false, zero: true, data: false, ...(extent.host !== undefined ? { offset: extent.host + inBelow } : {}) });
          }
        }
        else push({ start: extent.offset, length: extent.length, depth, present: false, zero: true, data: false, ...(extent.host !== undefined ? { offset: extent.host } : {}) });
      }
    }
  };
  if (image.backend.size > 0) await visit(0, 0, image.backend.size);
  return entries;
}
