import { MigrationStreamError } from '../errors.js';
import { connectionFailure, type MigrationChannel } from '../transport/channel.js';
import { crc32c } from './crc32c.js';
import { DEFAULT_FRAME_LIMITS, FRAME_HEADER_SIZE, PREAMBLE_SIZE, STREAM_MAGIC, STREAM_VERSION, frameLimit, frameTypeName, type FrameLimits } from './format.js';

export interface Frame {
  readonly type: number;
  readonly sequence: number;
  readonly payload: Uint8Array;
}

/**
 * Reads and checks frames from a channel. Buffers only bytes that have
 * arrived, and refuses a frame whose declared length exceeds its type's
 * limit before waiting for it, so a hostile length costs nothing.
 */
export class FrameReader {
  private readonly chunks: Uint8Array[] = [];
  private available = 0;
  private ended = false;
  private expectedSequence = 0;
  /** Bytes taken from the channel so far. */
  bytesRead = 0;

  constructor(
    private readonly channel: MigrationChannel,
    private readonly limits: FrameLimits = DEFAULT_FRAME_LIMITS,
  ) {}

  async readPreamble(): Promise<void> {
    if (!(await this.fill(PREAMBLE_SIZE))) {
      throw new MigrationStreamError('truncated', `stream ended after ${this.available} byte(s), inside the preamble`);
    }
    const preamble = this.take(PREAMBLE_SIZE);
    for (let index = 0; index < STREAM_MAGIC.length; index++) {
      if (preamble[index] !== STREAM_MAGIC[index]) throw new MigrationStreamError('not-a-stream', 'the preamble is not "TSVMIGR\\n"');
    }
    const version = new DataView(preamble.buffer, preamble.byteOffset, PREAMBLE_SIZE).getUint32(8, true);
    if (version !== STREAM_VERSION) throw new MigrationStreamError('version', `stream version ${version}, this receiver reads version ${STREAM_VERSION}`);
  }

  /** The next frame, or `null` when the channel ended cleanly at a frame boundary. */
  async next(): Promise<Frame | null> {
    if (!(await this.fill(FRAME_HEADER_SIZE))) {
      if (this.available === 0) return null;
      throw new MigrationStreamError('truncated', `stream ended inside a frame header (${this.available} of ${FRAME_HEADER_SIZE} bytes)`);
    }
    const header = this.peek(FRAME_HEADER_SIZE);
    const view = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_SIZE);
    const type = view.getUint8(0);
    const flags = view.getUint8(1);
    const reserved = view.getUint16(2, true);
    const sequence = view.getUint32(4, true);
    const length = view.getUint32(8, true);
    const limit = frameLimit(type, this.limits);
    if (limit === undefined) throw new MigrationStreamError('protocol', `unknown frame type ${type} (frame ${this.expectedSequence})`);
    if (flags !== 0 || reserved !== 0) throw new MigrationStreamError('protocol', `frame ${this.expectedSequence}: reserved header bits set`);
    if (sequence !== this.expectedSequence) {
      throw new MigrationStreamError('protocol', `frame numbered ${sequence} where frame ${this.expectedSequence} was expected (lost, repeated or reordered frame)`);
    }
    if (length > limit) {
      throw new MigrationStreamError('frame-too-large', `${frameTypeName(type)} frame of ${length} bytes exceeds the limit of ${limit}`);
    }
    const total = FRAME_HEADER_SIZE + length + 4;
    if (!(await this.fill(total))) {
      throw new MigrationStreamError('truncated', `stream ended inside ${frameTypeName(type)} frame ${sequence} (${this.available} of ${total} bytes)`);
    }
    const frame = this.take(total);
    const stored = new DataView(frame.buffer, frame.byteOffset + total - 4, 4).getUint32(0, true);
    if (crc32c(frame.subarray(0, total - 4)) !== stored) {
      throw new MigrationStreamError('checksum', `${frameTypeName(type)} frame ${sequence}: checksum mismatch`);
    }
    this.expectedSequence++;
    return { type, sequence, payload: frame.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length) };
  }

  /** Waits until `count` bytes are buffered; false if the channel ends first. */
  private async fill(count: number): Promise<boolean> {
    while (this.available < count) {
      if (this.ended) return false;
      let chunk: Uint8Array | null;
      try {
        chunk = await this.channel.read();
      } catch (error) {
        throw connectionFailure(error);
      }
      if (chunk === null) {
        this.ended = true;
        return false;
      }
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.available += chunk.length;
      this.bytesRead += chunk.length;
    }
    return true;
  }

  private peek(count: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= count) return first.subarray(0, count);
    return this.gather(count, false);
  }

  private take(count: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length > count) {
      this.chunks[0] = first.subarray(count);
      this.available -= count;
      return first.subarray(0, count);
    }
    if (first.length === count) {
      this.chunks.shift();
      this.available -= count;
      return first;
    }
    return this.gather(count, true);
  }

  /** Copies `count` buffered bytes (already known to be there) into one array. */
  private gather(count: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(count);
    let filled = 0;
    let index = 0;
    while (filled < count) {
      const chunk = this.chunks[index]!;
      const part = Math.min(chunk.length, count - filled);
      out.set(chunk.subarray(0, part), filled);
      filled += part;
      if (consume) {
        if (part === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(part);
      } else index++;
    }
    if (consume) this.available -= count;
    return out;
  }
}
