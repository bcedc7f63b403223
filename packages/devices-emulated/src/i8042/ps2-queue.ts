/** Bytes a PS/2 device has for the controller. */
export const PS2_QUEUE_SIZE = 16;
/** Command replies may use extra room beyond the input data, as a real device answers even with a full buffer. */
const REPLY_HEADROOM = 8;

export class Ps2Queue {
  bytes: number[] = [];

  get length(): number {
    return this.bytes.length;
  }

  /** Room for input data (keys, mouse packets). */
  get space(): number {
    return Math.max(PS2_QUEUE_SIZE - this.bytes.length, 0);
  }

  pushData(bytes: readonly number[]): boolean {
    if (bytes.length > this.space) return false;
    this.bytes.push(...bytes);
    return true;
  }

  pushReply(bytes: readonly number[]): void {
    for (const byte of bytes) if (this.bytes.length < PS2_QUEUE_SIZE + REPLY_HEADROOM) this.bytes.push(byte & 0xff);
  }

  shift(): number | undefined {
    return this.bytes.shift();
  }

  clear(): void {
    this.bytes = [];
  }
}
