// Test helpers for the ISA devices: a character frontend with a settable
// capacity (for backend tests) and byte-wide port accessors.
import type { BusDevice } from '@tsvirt/interfaces';

// The recording character frontend now lives beside the in-memory back ends.
export { RecordingCharacterFrontend } from '@tsvirt/interfaces/testing';

/** `inb`/`outb` on a device's own offsets, for terse register tests. */
export function bytePorts(device: BusDevice): { inb(offset: number): number; outb(offset: number, value: number): void } {
  return {
    inb: (offset) => device.read(offset, 1),
    outb: (offset, value) => device.write(offset, 1, value & 0xff),
  };
}

/** A JSON value at `path` (keys and array indexes) inside `root`, replaced by `value` in a deep copy. */
function replaceAt(root: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (Array.isArray(root)) return root.map((item, index) => (index === head ? replaceAt(item, rest, value) : item));
  if (typeof root === 'object' && root !== null) {
    const copy: Record<string, unknown> = { ...(root as Record<string, unknown>) };
    copy[String(head)] = replaceAt(copy[String(head)], rest, value);
    return copy;
  }
  return root;
}

/** Every path to a leaf (or an empty container) in a JSON value. */
export function statePaths(value: unknown, prefix: readonly (string | number)[] = []): Array<readonly (string | number)[]> {
  if (Array.isArray(value) && value.length > 0) return value.flatMap((item, index) => statePaths(item, [...prefix, index]));
  if (typeof value === 'object' && value !== null && Object.keys(value).length > 0) {
    return Object.entries(value).flatMap(([key, item]) => statePaths(item, [...prefix, key]));
  }
  return [prefix];
}

/**
 * Saved states with one field replaced by `replacement` (pick values near
 * and beyond each field's range): restore must either accept them or throw
 * `StateError` without changing the device.
 */
export function corruptState(saved: unknown, path: readonly (string | number)[], replacement: unknown): unknown {
  return replaceAt(saved, path, replacement);
}
