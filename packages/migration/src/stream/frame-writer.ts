import { connectionFailure, type MigrationChannel } from '../transport/channel.js';
import { crc32c } from './crc32c.js';
import { FRAME_HEADER_SIZE, FRAME_OVERHEAD, PREAMBLE_SIZE, STREAM_MAGIC, STREAM_VERSION, type FrameType } from './format.js';

/** Writes the preamble and checksummed, numbered frames to a channel. */
export class FrameWriter {
  private sequence = 0;
  /** Bytes handed to the channel so far. */
  bytesWritten = 0;

  constructor(private readonly channel: MigrationChannel) {}

  async writePreamble(): Promise<void> {
    const preamble = new Uint8Array(PREAMBLE_SIZE);
    preamble.set(STREAM_MAGIC);
    new DataView(preamble.buffer).setUint32(8, STREAM_VERSION, true);
    await this.send(preamble);
  }

  /** A buffer with room for the frame header, `payloadCapacity` bytes, and the checksum; payload starts at FRAME_HEADER_SIZE. */
  static allocate(payloadCapacity: number): Uint8Array {
    return new Uint8Array(payloadCapacity + FRAME_OVERHEAD);
  }

  /** Seals a frame built in place in `buffer` (from {@link FrameWriter.allocate}) and sends it; the buffer is the channel's afterwards. */
  async writeBuilt(type: FrameType, buffer: Uint8Array, payloadLength: number): Promise<void> {
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    view.setUint8(0, type);
    view.setUint8(1, 0);
    view.setUint16(2, 0, true);
    view.setUint32(4, this.sequence++, true);
    view.setUint32(8, payloadLength, true);
    const end = FRAME_HEADER_SIZE + payloadLength;
    view.setUint32(end, crc32c(buffer.subarray(0, end)), true);
    await this.send(buffer.subarray(0, end + 4));
  }

  async writeFrame(type: FrameType, payload: Uint8Array = new Uint8Array(0)): Promise<void> {
    const buffer = FrameWriter.allocate(payload.length);
    buffer.set(payload, FRAME_HEADER_SIZE);
    await this.writeBuilt(type, buffer, payload.length);
  }

  async writeJson(type: FrameType, value: unknown): Promise<void> {
    await this.writeFrame(type, new TextEncoder().encode(JSON.stringify(value)));
  }

  private async send(bytes: Uint8Array): Promise<void> {
    this.bytesWritten += bytes.length;
    try {
      await this.channel.write(bytes);
    } catch (error) {
      throw connectionFailure(error);
    }
  }
}
