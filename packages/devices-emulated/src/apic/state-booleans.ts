import type { StateReader } from '@tsvirt/interfaces';

/** Reads field `name` of untrusted `state` as exactly `length` booleans (StateReader has no boolean arrays). */
export function readBooleans(state: unknown, reader: StateReader, name: string, length: number): boolean[] {
  const raw = (state as Record<string, unknown>)[name];
  if (!Array.isArray(raw) || raw.length !== length || !raw.every((item) => typeof item === 'boolean')) {
    return reader.fail(name, `expected ${length} booleans`);
  }
  return raw as boolean[];
}
