/**
 * What a {@link JsonStreamParser} finds in its input: a complete JSON value,
 * or the reason a stretch of input is not one (the input goes on after it).
 */
export type JsonStreamItem = { readonly kind: 'value'; readonly value: unknown } | { readonly kind: 'error'; readonly reason: string };

export interface JsonStreamLimits {
  /** The most bytes one value may have (QEMU: 64 MiB); a longer one is dropped with an error. */
  readonly maxValueBytes: number;
  /** The deepest nesting of objects and arrays (QEMU: 1024). */
  readonly maxDepth: number;
}

export const DEFAULT_JSON_STREAM_LIMITS: JsonStreamLimits = { maxValueBytes: 1 << 20, maxDepth: 1024 };

const enum Mode {
  /** Between values. */
  Idle,
  /** Inside an object or array. */
  Container,
  /** A string at the top level. */
  TopString,
  /** A number or keyword at the top level (ends at a delimiter). */
  Scalar,
  /** A run of bytes no JSON value starts with. */
  Stray,
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

function isOpen(byte: number): boolean {
  return byte === 0x7b || byte === 0x5b;
}

function isClose(byte: number): boolean {
  return byte === 0x7d || byte === 0x5d;
}

/** Letters, digits, '-', '+' and '.': what numbers and keywords (true, false, null) are made of. */
function isScalarByte(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte === 0x2d || byte === 0x2b || byte === 0x2e || byte === 0x5f;
}

/**
 * Splits a byte stream into JSON values the way QEMU's JSON streamer does
 * for QMP: no framing, a value ends where its last brace or bracket closes
 * (or, for a top-level number or keyword, at the next delimiter), so
 * `{"a":1}{"b":2}` is two values and a request may span several lines.
 *
 * Hostile input is bounded: a value longer than `maxValueBytes` or nested
 * deeper than `maxDepth` gets one error and the rest of it is skipped
 * without being stored (its structure is still followed, so the next value
 * is found); a run of bytes that cannot start a value gets one error.
 */
export class JsonStreamParser {
  private mode = Mode.Idle;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The current value has broken a limit: follow it to its end, keep nothing. */
  private skipping = false;
  /** The current value's bytes so far (grown by doubling, up to the size limit). */
  private buffer = new Uint8Array(256);
  private length = 0;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly onItem: (item: JsonStreamItem) => void,
    private readonly limits: JsonStreamLimits = DEFAULT_JSON_STREAM_LIMITS,
  ) {}

  push(chunk: Uint8Array): void {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      switch (this.mode) {
        case Mode.Idle:
          if (isWhitespace(byte)) continue;
          start = i;
          if (isOpen(byte)) {
            this.mode = Mode.Container;
            this.depth = 1;
          } else if (byte === QUOTE) this.mode = Mode.TopString;
          else if (isScalarByte(byte)) this.mode = Mode.Scalar;
          else if (isClose(byte) || byte === 0x2c || byte === 0x3a) this.onItem({ kind: 'error', reason: 'expecting value' });
          else {
            this.mode = Mode.Stray;
            this.onItem({ kind: 'error', reason: `stray '${describeByte(byte)}'` });
          }
          break;
        case Mode.Container:
          if (this.inString) {
            if (this.escaped) this.escaped = false;
            else if (byte === BACKSLASH) this.escaped = true;
            else if (byte === QUOTE) this.inString = false;
          } else if (byte === QUOTE) this.inString = true;
          else if (isOpen(byte)) {
            this.depth++;
            if (this.depth > this.limits.maxDepth && !this.skipping) this.startSkipping('JSON nesting depth limit exceeded');
          } else if (isClose(byte) && --this.depth === 0) {
            this.finish(chunk, start, i + 1);
          }
          break;
        case Mode.TopString:
          if (this.escaped) this.escaped = false;
          else if (byte === BACKSLASH) this.escaped = true;
          else if (byte === QUOTE) this.finish(chunk, start, i + 1);
          break;
        case Mode.Scalar:
          if (!isScalarByte(byte)) {
            this.finish(chunk, start, i);
            i--; // the delimiter starts what comes next
          }
          break;
        case Mode.Stray:
          if (isWhitespace(byte) || isOpen(byte) || byte === QUOTE || isScalarByte(byte)) {
            this.mode = Mode.Idle;
            i--;
          }
          break;
      }
      if (this.mode !== Mode.Idle && this.mode !== Mode.Stray && !this.skipping && this.length + (i + 1 - start) > this.limits.maxValueBytes) {
        this.startSkipping('JSON token size limit exceeded');
      }
    }
    if (this.mode !== Mode.Idle && this.mode !== Mode.Stray && !this.skipping) this.keep(chunk.subarray(start));
  }

  private keep(bytes: Uint8Array): void {
    const needed = this.length + bytes.length;
    if (needed > this.buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.buffer.length * 2));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(bytes, this.length);
    this.length = needed;
  }

  private startSkipping(reason: string): void {
    this.skipping = true;
    this.length = 0;
    this.onItem({ kind: 'error', reason });
  }

  private finish(chunk: Uint8Array, start: number, end: number): void {
    const wasSkipping = this.skipping;
    const isScalar = this.mode === Mode.Scalar;
    let text: string | undefined;
    if (!wasSkipping) {
      this.keep(chunk.subarray(start, end));
      try {
        text = this.decoder.decode(this.buffer.subarray(0, this.length));
      } catch {
        text = undefined;
      }
    }
    this.mode = Mode.Idle;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.skipping = false;
    this.length = 0;
    // A large value's buffer is not kept for the next, small one.
    if (this.buffer.length > 4096) this.buffer = new Uint8Array(256);
    if (wasSkipping) return;
    if (text === undefined) {
      this.onItem({ kind: 'error', reason: 'invalid UTF-8 sequence in string' });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.onItem({ kind: 'error', reason: isScalar && !/^[-+.\d]/.test(text) ? `invalid keyword '${text.slice(0, 64)}'` : 'expecting value' });
      return;
    }
    this.onItem({ kind: 'value', value });
  }
}

/** A byte as QEMU's error names it: printable ASCII as itself, anything else as \xNN. */
function describeByte(byte: number): string {
  return byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
}
