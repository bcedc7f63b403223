import { open, type FileHandle } from 'node:fs/promises';
import { MigrationPeerError } from '../errors.js';
import type { MigrationChannel } from './channel.js';

const READ_CHUNK = 1024 * 1024;

/** A one-way channel into a file (save); `end` flushes it to disk and closes it. */
export async function fileWriteChannel(path: string): Promise<MigrationChannel> {
  const handle = await open(path, 'w');
  let closed = false;
  const close = async (sync: boolean): Promise<void> => {
    if (closed) return;
    closed = true;
    if (sync) await handle.sync();
    await handle.close();
  };
  return {
    duplex: false,
    async write(bytes) {
      if (closed) throw new MigrationPeerError(`${path} is closed`);
      let written = 0;
      while (written < bytes.length) written += (await handle.write(bytes, written, bytes.length - written)).bytesWritten;
    },
    read: async () => null,
    end: () => close(true),
    destroy: () => void close(false).catch(() => {}),
  };
}

/** A one-way channel out of a file (restore). */
export async function fileReadChannel(path: string): Promise<MigrationChannel> {
  const handle: FileHandle = await open(path, 'r');
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return {
    duplex: false,
    write: async () => {
      throw new MigrationPeerError('a restore file cannot be written to');
    },
    async read() {
      if (closed) return null;
      const buffer = new Uint8Array(READ_CHUNK);
      const { bytesRead } = await handle.read(buffer, 0, READ_CHUNK);
      if (bytesRead === 0) {
        await close();
        return null;
      }
      return buffer.subarray(0, bytesRead);
    },
    end: close,
    destroy: () => void close().catch(() => {}),
  };
}
