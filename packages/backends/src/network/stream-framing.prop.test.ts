import { fc, test } from '@fast-check/vitest';
import { MAX_FRAME_BYTES } from '@tsvirt/interfaces';
import { describe, expect, it } from 'vitest';
import { encodeStreamFrame, FramingError, StreamFrameDecoder } from './stream-framing.js';

describe("QEMU's stream framing", () => {
  it('is a 4-byte big-endian length, then the frame', () => {
    const frame = new Uint8Array(300).fill(0xab);
    const bytes = encodeStreamFrame(frame);
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0, 0, 0x01, 0x2c]);
    expect(bytes.subarray(4)).toEqual(frame);
  });

  test.prop([fc.array(fc.uint8Array({ minLength: 14, maxLength: 2000 }), { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 50 })])(
    'gives back the frames, in order, however the stream is cut',
    (frames, cuts) => {
      const stream = Uint8Array.from(frames.flatMap((frame) => Array.from(encodeStreamFrame(frame))));
      const decoder = new StreamFrameDecoder();
      const out: Uint8Array[] = [];
      let at = 0;
      for (let i = 0; at < stream.length; i++) {
        const next = Math.min(stream.length, at + cuts[i % cuts.length]!);
        for (const frame of decoder.push(stream.subarray(at, next))) out.push(frame.slice());
        at = next;
      }
      expect(out).toEqual(frames);
      expect(decoder.buffered).toBe(0);
    },
  );

  it('skips and counts frames shorter than an Ethernet header, and keeps its place', () => {
    const decoder = new StreamFrameDecoder();
    const good = new Uint8Array(60).fill(1);
    const bytes = Uint8Array.from([...encodeStreamFrame(new Uint8Array(5)), ...encodeStreamFrame(new Uint8Array(0)), ...encodeStreamFrame(good)]);
    expect(decoder.push(bytes)).toEqual([good]);
    expect(decoder.runts).toBe(1);
  });

  it('refuses a length no frame can have with FramingError', () => {
    const decoder = new StreamFrameDecoder();
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, MAX_FRAME_BYTES + 1, false);
    expect(() => decoder.push(header)).toThrow(FramingError);
    expect(() => new StreamFrameDecoder().push(Uint8Array.of(0xff, 0xff, 0xff, 0xff))).toThrow(/frame length of 4294967295 bytes/);
    // The longest legal frame passes.
    expect(new StreamFrameDecoder().push(encodeStreamFrame(new Uint8Array(MAX_FRAME_BYTES)))).toHaveLength(1);
  });
});
