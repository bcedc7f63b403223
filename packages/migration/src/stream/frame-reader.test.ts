import { describe, expect, it } from 'vitest';
import type { MigrationChannel } from '../transport/channel.js';
import { RecordingChannel, replayChannel } from '../testing/index.js';
import { FrameType } from './format.js';
import { FrameReader } from './frame-reader.js';
import { FrameWriter } from './frame-writer.js';

async function stream(build: (writer: FrameWriter) => Promise<void>): Promise<Uint8Array> {
  const channel = new RecordingChannel();
  const writer = new FrameWriter(channel);
  await writer.writePreamble();
  await build(writer);
  return channel.bytes();
}

describe('FrameReader', () => {
  it('reads frames back across any chunking', async () => {
    const bytes = await stream(async (writer) => {
      await writer.writeJson(FrameType.Header, { hello: 1 });
      await writer.writeFrame(FrameType.RamPages, new Uint8Array(5000).fill(3));
    });
    for (const chunk of [1, 7, 4096, 100_000]) {
      const reader = new FrameReader(replayChannel(bytes, chunk));
      await reader.readPreamble();
      const header = await reader.next();
      expect(header?.type).toBe(FrameType.Header);
      expect(new TextDecoder().decode(header!.payload)).toBe('{"hello":1}');
      const pages = await reader.next();
      expect(pages?.sequence).toBe(1);
      expect(pages?.payload.length).toBe(5000);
      expect(pages?.payload.every((value) => value === 3)).toBe(true);
      expect(await reader.next()).toBeNull();
    }
  });

  it('refuses a frame longer than its type allows before waiting for its bytes', async () => {
    const bytes = await stream(async (writer) => writer.writeFrame(FrameType.Header));
    const header = bytes.slice(0, 12 + 12);
    new DataView(header.buffer).setUint32(12 + 8, 0xffff_ff00, true);
    let reads = 0;
    const inner = replayChannel(header, 1024);
    const counting: MigrationChannel = { ...inner, read: () => (reads++, inner.read()) };
    const reader = new FrameReader(counting);
    await reader.readPreamble();
    await expect(reader.next()).rejects.toMatchObject({ reason: 'frame-too-large' });
    expect(reads).toBe(1);
  });

  it('refuses a repeated frame even with a valid checksum', async () => {
    const one = await stream(async (writer) => writer.writeFrame(FrameType.Accept));
    const twice = new Uint8Array([...one, ...one.subarray(12)]);
    const reader = new FrameReader(replayChannel(twice));
    await reader.readPreamble();
    await reader.next();
    await expect(reader.next()).rejects.toMatchObject({ reason: 'protocol' });
  });

  it('names unknown frame types and other stream versions', async () => {
    const bytes = await stream(async (writer) => writer.writeFrame(FrameType.Accept));
    const unknown = bytes.slice();
    unknown[12] = 77;
    const reader = new FrameReader(replayChannel(unknown));
    await reader.readPreamble();
    await expect(reader.next()).rejects.toThrow(/unknown frame type 77/);
    const future = bytes.slice();
    future[8] = 2;
    await expect(new FrameReader(replayChannel(future)).readPreamble()).rejects.toMatchObject({ reason: 'version' });
  });
});
