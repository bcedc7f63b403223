import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { BlockBackend } from '@tsvirt/interfaces';
import { ImageFormatError, ImageToolError } from './errors.js';
import { type LockRequest, lockRequestFor } from './file-locks.js';
import { NbdClient, parseNbdUri } from './nbd/client.js';
import { type ImageFile, NodeImageFile } from './image-file.js';
import type { ImageLocks } from './image-locks.js';
import { QCOW2_MAGIC } from './qcow2/format.js';
import { probeQcow2, Qcow2Backend } from './qcow2/qcow2.js';
import { repairRefcounts } from './qcow2/check.js';
import { RawBackend } from './raw.js';

export type ImageFormat = 'raw' | 'qcow2';

/** True for qemu's NBD URIs (nbd://, nbd+tcp://, nbd+unix://). */
export function isNbdUri(path: string): boolean {
  return /^nbd(\+tcp|\+unix)?:\/\//.test(path);
}

export interface OpenImageOptions {
  /** Probed from the file's magic when omitted (raw unless it is qcow2). */
  format?: ImageFormat;
  readOnly?: boolean;
  /** Open the backing chain (default true); without it unallocated clusters read as zeros. */
  backing?: boolean;
  /** Longest backing chain accepted (default 128); longer ones are refused as likely loops. */
  maxChainDepth?: number;
  /** Lock registry; a second writer of a locked image is refused. */
  locks?: ImageLocks;
  /** Open even if others hold it (qemu-img -U); read-only opens only. */
  forceShare?: boolean;
  /**
   * QEMU's file locks (byte-range locks on the image files, see file-locks.ts):
   * `auto` (the default) takes them where the host can, `off` takes none.
   */
  locking?: 'auto' | 'off';
  /** Open writable for `check -r`: a corrupt or dirty image is left as found for the checker. */
  forRepair?: boolean;
}

/** An opened image with what was learnt opening it. */
export interface OpenedImage {
  backend: BlockBackend;
  format: ImageFormat;
  path: string;
  /** The backing image, opened read-only (itself an OpenedImage), if any. */
  backing: OpenedImage | undefined;
  /** The backing file name as recorded in the image. */
  backingFile: string | undefined;
  backingFormat: string | undefined;
}

/** Reads the first bytes of a file to tell qcow2 from raw. */
export async function probeFormat(file: ImageFile): Promise<ImageFormat> {
  const magic = new Uint8Array(4);
  await file.read(0, magic);
  return new DataView(magic.buffer).getUint32(0) === QCOW2_MAGIC ? 'qcow2' : 'raw';
}

/** Resolves a backing file name the way QEMU does: relative names are relative to the image's directory. */
export function resolveBackingPath(imagePath: string, backingFile: string): string {
  return isAbsolute(backingFile) ? backingFile : resolve(dirname(imagePath), backingFile);
}

/**
 * Resolves an external data file name the way QEMU 7.2 does: unlike a backing
 * file name, a relative one is taken from the current working directory, not
 * from the image's directory (qemu-img create and qemu-img/qemu-io opens
 * alike), so an image made with a relative `data_file` opens only from there.
 */
export function resolveDataFilePath(dataFile: string): string {
  return resolve(dataFile);
}

/**
 * Opens an image file and, unless told not to, its whole backing chain
 * (read-only). An NBD URI opens a network disk instead (reported as raw).
 */
export async function openImage(path: string, options: OpenImageOptions = {}): Promise<OpenedImage> {
  if (isNbdUri(path)) {
    const backend = await NbdClient.connect(parseNbdUri(path));
    return { backend, format: 'raw', path, backing: undefined, backingFile: undefined, backingFormat: undefined };
  }
  return openChain(path, options, [], options.format);
}

async function openChain(path: string, options: OpenImageOptions, seen: string[], format: ImageFormat | undefined): Promise<OpenedImage> {
  const readOnly = seen.length > 0 || (options.readOnly ?? false);
  if (options.forceShare && !readOnly) throw new ImageToolError('force-share=on can only be used with read-only images');
  const lock: LockRequest | undefined = options.locking === 'off' ? undefined : lockRequestFor(!readOnly, options.forceShare ?? false);
  const real = await realpath(path).catch(() => resolve(path));
  if (seen.includes(real)) throw new ImageFormatError(`backing chain loops back to ${path}`);
  if (seen.length > (options.maxChainDepth ?? 128)) throw new ImageFormatError(`backing chain deeper than ${options.maxChainDepth ?? 128}`);
  const release = options.locks?.acquire(real, !readOnly, { shared: options.forceShare ?? false });
  const opened: Array<{ close(): Promise<void> }> = [];
  try {
    const file = await NodeImageFile.open(path, { readOnly, ...(lock ? { lock } : {}) });
    opened.push(file);
    const actual = format ?? (await probeFormat(file));
    if (actual === 'raw') {
      const backend = await RawBackend.open(file);
      return { backend: withRelease(backend, release), format: 'raw', path, backing: undefined, backingFile: undefined, backingFormat: undefined };
    }
    const probe = await probeQcow2(file);
    // A file name the image records is untrusted: one no file system can have is a bad image, not a host error.
    for (const [what, name] of [['backing file', probe.backingFile], ['data file', probe.extensions.dataFile]] as const) {
      if (name !== undefined && (name.length === 0 || name.includes('\0'))) throw new ImageFormatError(`${path}: the ${what} name ${JSON.stringify(name)} is not a file name`);
    }
    let backing: OpenedImage | undefined;
    if (probe.backingFile !== undefined && (options.backing ?? true)) {
      const backingFormat = probe.extensions.backingFormat;
      if (backingFormat !== undefined && backingFormat !== 'raw' && backingFormat !== 'qcow2') {
        throw new ImageFormatError(`backing format ${JSON.stringify(backingFormat)} is not supported`);
      }
      backing = isNbdUri(probe.backingFile)
        ? await openImage(probe.backingFile)
        : await openChain(resolveBackingPath(path, probe.backingFile), { ...options, readOnly: true, locks: options.locks }, [...seen, real], backingFormat);
      opened.push(backing.backend);
    }
    let dataFile: ImageFile | undefined;
    if (probe.extensions.dataFile !== undefined) {
      dataFile = await NodeImageFile.open(resolveDataFilePath(probe.extensions.dataFile), { readOnly, ...(lock ? { lock } : {}) });
      opened.push(dataFile);
    }
    const backend = await Qcow2Backend.open(file, {
      ...(backing ? { backing: backing.backend } : {}),
      ...(dataFile ? { dataFile } : {}),
      repairDirty: (image) => repairRefcounts(image),
      forRepair: (options.forRepair ?? false) && seen.length === 0,
    });
    return {
      backend: withRelease(backend, release),
      format: 'qcow2',
      path,
      backing,
      backingFile: probe.backingFile,
      backingFormat: probe.extensions.backingFormat,
    };
  } catch (error) {
    for (const item of opened.reverse()) await item.close().catch(() => undefined);
    release?.();
    throw error;
  }
}

/** Releases the image lock when the backend closes. */
function withRelease<T extends BlockBackend>(backend: T, release: (() => void) | undefined): T {
  if (release === undefined) return backend;
  const close = backend.close.bind(backend);
  backend.close = async () => {
    try {
      await close();
    } finally {
      release();
    }
  };
  return backend;
}
