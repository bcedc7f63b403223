import { StateError } from './errors.js';

/**
 * Reads untrusted saved state field by field, checking each, so every
 * `restore` validates the same way and names the failing field in its error.
 *
 * @example
 * ```ts
 * const saved = JSON.parse('{"version":1,"ier":5,"fifo":"AQI=","name":"com1"}');
 * const state = StateReader.open(saved, 'uart', 1);
 * assert.equal(state.uint('ier', 0xff), 5);
 * assert.deepEqual([...state.bytes('fifo', 16)], [1, 2]);
 * assert.equal(state.string('name'), 'com1');
 * assert.throws(() => state.uint('missing', 0xff), StateError);
 * assert.throws(() => StateReader.open({ version: 2 }, 'uart', 1), StateError);
 * ```
 */
export class StateReader {
  private constructor(
    private readonly record: Record<string, unknown>,
    private readonly path: string,
  ) {}

  /** Opens a component's state and checks its version against `version` (or one of `version`). */
  static open(state: unknown, path: string, version: number | readonly number[]): StateReader {
    const reader = StateReader.of(state, path);
    const got = reader.record.version;
    const accepted = typeof version === 'number' ? [version] : version;
    if (typeof got !== 'number' || !accepted.includes(got)) {
      throw new StateError(`${path}.version`, `expected version ${accepted.join(' or ')}, got ${JSON.stringify(got)}`);
    }
    return reader;
  }

  /** Wraps a nested record without a version check. */
  static of(state: unknown, path: string): StateReader {
    if (typeof state !== 'object' || state === null || Array.isArray(state)) {
      throw new StateError(path, 'expected an object');
    }
    return new StateReader(state as Record<string, unknown>, path);
  }

  get version(): number {
    return this.record.version as number;
  }

  has(name: string): boolean {
    return this.record[name] !== undefined;
  }

  /** An integer in `[0, max]`. */
  uint(name: string, max: number): number {
    const value = this.record[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
      throw new StateError(this.at(name), `expected an integer in [0, ${max}], got ${describe(value)}`);
    }
    return value;
  }

  /** An integer in `[min, max]`. */
  int(name: string, min: number, max: number): number {
    const value = this.record[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new StateError(this.at(name), `expected an integer in [${min}, ${max}], got ${describe(value)}`);
    }
    return value;
  }

  /** Any finite number. */
  number(name: string): number {
    const value = this.record[name];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new StateError(this.at(name), `expected a finite number, got ${describe(value)}`);
    }
    return value;
  }

  boolean(name: string): boolean {
    const value = this.record[name];
    if (typeof value !== 'boolean') throw new StateError(this.at(name), `expected a boolean, got ${describe(value)}`);
    return value;
  }

  string(name: string, allowed?: readonly string[]): string {
    const value = this.record[name];
    if (typeof value !== 'string' || (allowed !== undefined && !allowed.includes(value))) {
      const expectation = allowed === undefined ? 'a string' : `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
      throw new StateError(this.at(name), `expected ${expectation}, got ${describe(value)}`);
    }
    return value;
  }

  /** Bytes saved with {@link encodeStateBytes} (base64), at most `maxLength` of them. */
  bytes(name: string, maxLength: number, exactLength?: number): Uint8Array {
    const value = this.record[name];
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
      throw new StateError(this.at(name), `expected base64 bytes, got ${describe(value)}`);
    }
    if ((value.length / 4) * 3 > maxLength + 2) {
      throw new StateError(this.at(name), `more than ${maxLength} bytes`);
    }
    const bytes = new Uint8Array(Buffer.from(value, 'base64'));
    if (bytes.length > maxLength || (exactLength !== undefined && bytes.length !== exactLength)) {
      throw new StateError(this.at(name), `expected ${exactLength ?? `at most ${maxLength}`} bytes, got ${bytes.length}`);
    }
    return bytes;
  }

  /** An array of at most `maxLength` integers, each in `[0, max]`. */
  uintArray(name: string, maxLength: number, max: number, exactLength?: number): number[] {
    const value = this.record[name];
    if (!Array.isArray(value) || value.length > maxLength || (exactLength !== undefined && value.length !== exactLength)) {
      throw new StateError(this.at(name), `expected an array of ${exactLength ?? `at most ${maxLength}`} integers`);
    }
    value.forEach((item, index) => {
      if (typeof item !== 'number' || !Number.isSafeInteger(item) || item < 0 || item > max) {
        throw new StateError(`${this.at(name)}[${index}]`, `expected an integer in [0, ${max}], got ${describe(item)}`);
      }
    });
    return value as number[];
  }

  /** A field as saved, for a nested component whose own `restore` validates it. */
  raw(name: string): unknown {
    return this.record[name];
  }

  /** A nested record. */
  child(name: string): StateReader {
    return StateReader.of(this.record[name], this.at(name));
  }

  /** A nested array of at most `maxLength` records. */
  children(name: string, maxLength: number): StateReader[] {
    const value = this.record[name];
    if (!Array.isArray(value) || value.length > maxLength) {
      throw new StateError(this.at(name), `expected an array of at most ${maxLength} records`);
    }
    return value.map((item, index) => StateReader.of(item, `${this.at(name)}[${index}]`));
  }

  /** Throws a {@link StateError} for field `name` (for checks beyond a field's type). */
  fail(name: string, message: string): never {
    throw new StateError(this.at(name), message);
  }

  private at(name: string): string {
    return `${this.path}.${name}`;
  }
}

/** Encodes bytes for a saved state (base64), the inverse of {@link StateReader.bytes}. */
export function encodeStateBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? typeof value : text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
