import { ETHERNET_HEADER_BYTES, MAX_FRAME_BYTES, TsvirtError } from '@tsvirt/interfaces';

/** The peer broke QEMU's stream framing (a length no frame can have): the connection cannot be resynchronised. */
export class FramingError extends TsvirtError {
  constructor(
    message: string,
    /** The whole frames that came before the bad length in the same chunk: they are good. */
    readonly framesBefore: readonly Uint8Array[] = [],
  ) {
    super('NET_FRAMING', message);
  }
}

/** QEMU's stream framing (`-netdev stream`, `-netdev socket,listen|connect`, passt): a 4-byte big-endian length, then the frame. */
export function encodeStreamFrame(frame: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(4 + frame.length);
  new DataView(bytes.buffer).setUint32(0, frame.length, false);
  bytes.set(frame, 4);
  return bytes;
}

/**
 * Splits a byte stream in QEMU's stream framing back into frames, across
 * any chunking. A frame shorter than an Ethernet header is skipped (and
 * counted); a length longer than any frame (65,549 bytes) throws
 * `FramingError` (carrying the good frames before it), as QEMU drops such
 * a connection.
 *
 * @example
 * ```ts
 * const decoder = new StreamFrameDecoder();
 * const bytes = encodeStreamFrame(new Uint8Array(60).fill(7));
 * assert.deepEqual(decoder.push(bytes.subarray(0, 10)), []);
 * const [frame] = decoder.push(bytes.subarray(10));
 * assert.equal(frame!.length, 60);
 * ```
 */
export class StreamFrameDecoder {
  /** Frames skipped for being shorter than an Ethernet header. */
  runts = 0;
  private pending: Uint8Array = new Uint8Array(0);

  /** The frames completed by `chunk` (views valid until the next call). */
  push(chunk: Uint8Array): Uint8Array[] {
    let bytes = chunk;
    if (this.pending.length > 0) {
      bytes = new Uint8Array(this.pending.length + chunk.length);
      bytes.set(this.pending);
      bytes.set(chunk, this.pending.length);
    }
    const frames: Uint8Array[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    while (bytes.length - at >= 4) {
      const length = view.getUint32(at, false);
      if (length > MAX_FRAME_BYTES) throw new FramingError(`the peer sent a frame length of ${length} bytes (at most ${MAX_FRAME_BYTES})`, frames);
      if (bytes.length - at - 4 < length) break;
      if (length >= ETHERNET_HEADER_BYTES) frames.push(bytes.subarray(at + 4, at + 4 + length));
      else if (length > 0) this.runts++;
      at += 4 + length;
    }
    this.pending = bytes.slice(at);
    return frames;
  }

  /** Bytes of an incomplete frame waiting for the rest. */
  get buffered(): number {
    return this.pending.length;
  }
}
