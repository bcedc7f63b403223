import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { BlockError } from '@tsvirt/interfaces';
import { ImageCorruptError, ImageUnsupportedError } from '../errors.js';
import { ERRNO, loadNative } from '../native.js';
import type { CompressionType } from './format.js';

/**
 * Inflates one compressed cluster into exactly `clusterSize` bytes. The input
 * may carry trailing bytes (it is rounded to 512-byte sectors); output larger
 * than a cluster is refused rather than allocated.
 */
export function decompressCluster(type: CompressionType, data: Uint8Array, clusterSize: number): Uint8Array {
  let out: Uint8Array;
  try {
    if (type === 'zlib') {
      out = inflateRawSync(data, { maxOutputLength: clusterSize, finishFlush: 2 /* Z_SYNC_FLUSH: tolerate a short tail */ });
    } else {
      out = zstdDecompress(data.subarray(0, zstdFrameLength(data)), new Uint8Array(clusterSize));
    }
  } catch (error) {
    throw new ImageCorruptError(`compressed cluster does not decompress: ${(error as Error).message}`);
  }
  if (out.length !== clusterSize) {
    throw new ImageCorruptError(`compressed cluster decompresses to ${out.length} bytes, not ${clusterSize}`);
  }
  return out;
}

/**
 * Compresses a cluster the way QEMU does: zlib as raw deflate with a 4 KiB
 * window, zstd as one plain frame at zstd's default level (through libzstd in
 * the native addon). As in QEMU the result must fit in a cluster less one
 * byte; undefined when it does not (the cluster is then written as it is).
 */
export function compressCluster(type: CompressionType, data: Uint8Array): Uint8Array | undefined {
  if (type === 'zlib') {
    const out = deflateRawSync(data, { windowBits: 12, level: 6 });
    return out.length < data.length ? out : undefined;
  }
  const native = loadNative().native;
  if (native === undefined) throw new ImageUnsupportedError('writing zstd-compressed clusters needs the native addon (libzstd)');
  const out = new Uint8Array(data.length - 1);
  const length = native.zstdCompress(data, out);
  if (length === -ERRNO.ENOSPC) return undefined;
  if (length < 0) throw new BlockError('BLOCK_IO', `zstd compression failed (errno ${-length})`);
  return out.subarray(0, length);
}

/**
 * The length of the zstd frame at the start of `data`, walking its block
 * headers: the compressed cluster is followed by sector padding, which the
 * decoder would otherwise take for a second frame.
 */
export function zstdFrameLength(data: Uint8Array): number {
  const fail = (why: string): never => {
    throw new Error(`zstd frame: ${why}`);
  };
  if (data.length < 6 || data[0] !== 0x28 || data[1] !== 0xb5 || data[2] !== 0x2f || data[3] !== 0xfd) fail('bad magic');
  const descriptor = data[4]!;
  const singleSegment = (descriptor & 0x20) !== 0;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
  const contentSizeFlag = descriptor >> 6;
  const contentSizeBytes = contentSizeFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][contentSizeFlag]!;
  let at = 5 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes;
  for (;;) {
    if (at + 3 > data.length) fail('truncated block header');
    const header = data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16);
    const type = (header >> 1) & 3;
    if (type === 3) fail('reserved block type');
    at += 3 + (type === 1 ? 1 : header >>> 3);
    if (header & 1) break;
  }
  if (descriptor & 4) at += 4;
  if (at > data.length) fail('truncated frame');
  return at;
}
