import { BlockError, type BlockBackend, canDiscard, canResize, hasBlockStatus, hasSnapshots } from '@tsvirt/interfaces';
import { ImageCorruptError, ImageToolError } from '../errors.js';
import { lockRequestFor } from '../file-locks.js';
import { NodeImageFile } from '../image-file.js';
import { type ImageFormat, type OpenedImage, openImage, resolveBackingPath, resolveDataFilePath } from '../open.js';
import { checkQcow2 } from '../qcow2/check.js';
import { createQcow2, type Qcow2CreateOptions, writeZeros } from '../qcow2/create.js';
import { Qcow2Backend } from '../qcow2/qcow2.js';
import { RawBackend } from '../raw.js';

/** Called with the fraction done (0..1) of a long operation. */
export type Progress = (fraction: number) => void;
const noProgress: Progress = () => {};

export interface CreateImageOptions extends Partial<Omit<Qcow2CreateOptions, 'dataFileHandle'>> {
  format: ImageFormat;
  /** Virtual size; defaults to the backing file's. */
  size?: number;
}

// As qemu-img create, an image some process is using is refused, not truncated under it.
const WRITER = lockRequestFor(true, false);

/** `qemu-img create`: a new image file, opened read-write. */
export async function createImage(path: string, options: CreateImageOptions): Promise<BlockBackend> {
  let size = options.size;
  if (options.backingFile !== undefined && size === undefined) {
    const backing = await openImage(resolveBackingPath(path, options.backingFile), {
      readOnly: true,
      ...(options.backingFormat === 'raw' || options.backingFormat === 'qcow2' ? { format: options.backingFormat } : {}),
    });
    size = backing.backend.size;
    await backing.backend.close();
  }
  if (size === undefined) throw new ImageToolError('an image size is needed (or a backing file to take it from)');
  if (options.format === 'raw') {
    if (options.backingFile !== undefined) throw new ImageToolError('raw images cannot have a backing file');
    const preallocation = options.preallocation ?? 'off';
    if (preallocation === 'metadata') throw new ImageToolError('Unsupported preallocation mode: metadata');
    const file = await NodeImageFile.open(path, { create: true, lock: WRITER });
    try {
      await file.truncate(size);
      // falloc reserves blocks without writing (where the host cannot, it writes zeros, as glibc's posix_fallocate).
      if (preallocation === 'full' || (preallocation === 'falloc' && !(await file.allocate(0, size)))) await writeZeros(file, 0, size);
      // QEMU writes the first block of a new raw file so that its alignment can be probed; map shows it as data.
      else if (size > 0) await writeZeros(file, 0, Math.min(size, 4096));
    } catch (error) {
      await file.close();
      throw error;
    }
    return RawBackend.open(file);
  }
  const file = await NodeImageFile.open(path, { create: true, lock: WRITER });
  const dataFileHandle = options.dataFile !== undefined ? await NodeImageFile.open(resolveDataFilePath(options.dataFile), { create: true, lock: WRITER }) : undefined;
  return createQcow2(file, { ...options, size, ...(dataFileHandle ? { dataFileHandle } : {}) });
}

export interface ConvertOptions {
  outputFormat: ImageFormat;
  /** Compress the output's clusters (qcow2 only). */
  compress?: boolean;
  /** Creation options of the output (qcow2). */
  create?: Partial<Omit<Qcow2CreateOptions, 'size'>>;
  /** Zero runs of this many bytes are left unallocated (qemu-img -S, default 4 KiB; 0 writes everything). */
  sparseSize?: number;
  onProgress?: Progress;
  /**
   * `-B`: the output gets this backing file, which stands for the source's
   * own backing chain, so only what the source's top layer holds is copied.
   */
  backingFile?: string;
  backingFormat?: string;
  /** `-n`: the target exists and is opened, not created; it must be at least as large as the source. */
  noCreate?: boolean;
}

export interface CopyOptions {
  compress?: boolean;
  sparseSize?: number;
  onProgress?: Progress;
  /**
   * The target does not read as zeros where nothing is written (an existing
   * image, `convert -n`, or one with a backing file): zero runs are written as
   * zeroes (write-zeroes where it can) instead of being skipped.
   */
  targetHasData?: boolean;
  /**
   * Copy only what the source's own layer holds (`convert -B`: the target's
   * backing file stands for the source's); a qcow2 source's unallocated
   * clusters are left to the target's backing file.
   */
  onlyTopLayer?: boolean;
}

/**
 * Copies every guest byte of `source` into the equally sized (or larger)
 * `target`, leaving zero runs unallocated where the target reads as zeros.
 */
export async function copyContents(source: BlockBackend, target: BlockBackend, options: CopyOptions = {}): Promise<void> {
  const size = source.size;
  const progress = options.onProgress ?? noProgress;
  const unit = target instanceof Qcow2Backend ? target.clusterSize : 4096;
  const chunk = Math.max(unit, Math.floor((1 << 20) / unit) * unit);
  const sparse = options.sparseSize ?? 4096;
  const buffer = new Uint8Array(chunk);
  const zeroes = async (offset: number, length: number) => {
    if (!options.targetHasData) return;
    if (canDiscard(target)) await target.writeZeroes(offset, length);
    else await target.writeAt(offset, new Uint8Array(length));
  };
  for (let chunkStart = 0; chunkStart < size; chunkStart += chunk) {
    const chunkLength = Math.min(chunk, size - chunkStart);
    progress(chunkStart / size);
    const ranges = options.onlyTopLayer && source instanceof Qcow2Backend
      ? (await source.map(chunkStart, chunkLength)).filter((extent) => extent.kind !== 'unallocated')
      : [{ offset: chunkStart, length: chunkLength }];
    for (const { offset, length } of ranges) {
      if (sparse > 0 && hasBlockStatus(source)) {
        const extents = await source.blockStatus(offset, length);
        if (extents.length === 1 && extents[0]!.zero && extents[0]!.length === length) {
          await zeroes(offset, length);
          continue;
        }
      }
      const data = buffer.subarray(0, length);
      await source.readAt(offset, data);
      if (options.compress && target instanceof Qcow2Backend) {
        for (let at = 0; at < length; at += unit) {
          const piece = data.subarray(at, Math.min(length, at + unit));
          if (!isZero(piece)) await target.writeCompressed(offset + at, piece);
          else await zeroes(offset + at, piece.length);
        }
        continue;
      }
      const step = sparse > 0 ? Math.max(sparse, 512) : length;
      const zeroPiece = (at: number) => sparse > 0 && isZero(data.subarray(at, Math.min(length, at + step)));
      for (let at = 0; at < length; ) {
        // A run of zero pieces, then a run of data pieces, each as one request.
        const zero = zeroPiece(at);
        let stop = Math.min(length, at + step);
        while (stop < length && zeroPiece(stop) === zero) stop = Math.min(length, stop + step);
        if (zero) await zeroes(offset + at, stop - at);
        else await target.writeAt(offset + at, data.subarray(at, stop));
        at = stop;
      }
    }
  }
  await target.flush();
  progress(1);
}

function isZero(bytes: Uint8Array): boolean {
  // Eight bytes at a time where alignment allows.
  const words = bytes.byteOffset % 8 === 0 ? Math.floor(bytes.length / 8) : 0;
  if (words > 0) {
    const wide = new BigUint64Array(bytes.buffer, bytes.byteOffset, words);
    for (let i = 0; i < words; i++) if (wide[i] !== 0n) return false;
  }
  for (let i = words * 8; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** `qemu-img convert`: `source` (any backend, its chain flattened) into a new image at `targetPath`. */
export async function convertImage(source: BlockBackend, targetPath: string, options: ConvertOptions): Promise<void> {
  if (options.compress && options.outputFormat !== 'qcow2') throw new ImageToolError('compression needs the qcow2 output format');
  const withBacking = options.backingFile !== undefined;
  if (withBacking && options.outputFormat !== 'qcow2') throw new ImageToolError(`Backing file not supported for file format '${options.outputFormat}'`);
  let target: BlockBackend;
  if (options.noCreate) {
    target = (await openImage(targetPath, { format: options.outputFormat })).backend;
    if (target.size < source.size) {
      await target.close();
      throw new ImageToolError('output file is smaller than input file');
    }
  } else {
    target = await createImage(targetPath, {
      ...(options.create ?? {}),
      format: options.outputFormat,
      size: source.size,
      ...(withBacking ? { backingFile: options.backingFile, ...(options.backingFormat !== undefined ? { backingFormat: options.backingFormat } : {}) } : {}),
    });
  }
  try {
    await copyContents(source, target, { ...options, targetHasData: options.noCreate === true || withBacking, onlyTopLayer: withBacking });
  } finally {
    await target.close();
  }
}

/** `qemu-img compare`: undefined if equal, else the first differing offset. Sizes may differ if the tail is zeros. */
export async function compareImages(a: BlockBackend, b: BlockBackend, onProgress: Progress = noProgress): Promise<number | undefined> {
  const size = Math.max(a.size, b.size);
  const chunk = 1 << 20;
  const left = new Uint8Array(chunk);
  const right = new Uint8Array(chunk);
  for (let offset = 0; offset < size; offset += chunk) {
    onProgress(offset / size);
    const length = Math.min(chunk, size - offset);
    left.fill(0);
    right.fill(0);
    if (offset < a.size) await a.readAt(offset, left.subarray(0, Math.min(length, a.size - offset)));
    if (offset < b.size) await b.readAt(offset, right.subarray(0, Math.min(length, b.size - offset)));
    for (let i = 0; i < length; i++) if (left[i] !== right[i]) return offset + i;
  }
  onProgress(1);
  return undefined;
}

/**
 * The tools that rework an image's metadata (snapshot, resize, commit,
 * rebase, amend) first check it, and refuse one with errors: building on
 * wrong refcounts or tables spreads the damage (a freed cluster still in
 * use, a table written over data). Leaked clusters are harmless. Nothing is
 * written to a refused image.
 */
export async function refuseCorrupt(backend: BlockBackend, path: string, action: string): Promise<void> {
  if (!(backend instanceof Qcow2Backend)) return;
  const report = await checkQcow2(backend);
  const errors = report.corruptions + report.checkErrors;
  if (errors > 0) {
    throw new ImageCorruptError(`${path}: ${errors} error(s) were found on the image, so it will not ${action} (repair it first: tsvirt img check -r all ${path})`);
  }
}

/**
 * `qemu-img commit`: writes the data allocated in the top image into its
 * backing file, then (unless `keep`) empties the top image.
 */
export async function commitImage(path: string, options: { keep?: boolean; onProgress?: Progress } = {}): Promise<void> {
  // Only the top's own clusters are read, so its chain stays closed: an open
  // read-only backing file would hold a lock refusing the writer below.
  const top = await openImage(path, { backing: false });
  try {
    if (!(top.backend instanceof Qcow2Backend) || top.backingFile === undefined) {
      throw new ImageToolError(`${path} has no backing file to commit into`);
    }
    const image = top.backend;
    const baseFormat = top.backingFormat === 'raw' || top.backingFormat === 'qcow2' ? top.backingFormat : undefined;
    const base = await openImage(resolveBackingPath(path, top.backingFile), { ...(baseFormat ? { format: baseFormat } : {}), backing: false });
    try {
      await refuseCorrupt(image, path, 'be committed');
      await refuseCorrupt(base.backend, resolveBackingPath(path, top.backingFile), 'take a commit');
      if (base.backend.size < image.size) {
        if (!canResize(base.backend)) throw new ImageToolError('the backing file cannot grow to the top image size');
        await base.backend.resize(image.size);
      }
      const extents = await image.map(0, image.size);
      const total = extents.reduce((sum, extent) => sum + extent.length, 0);
      let done = 0;
      for (const extent of extents) {
        options.onProgress?.(done / Math.max(total, 1));
        if (extent.kind === 'data' || extent.kind === 'compressed') {
          const buffer = new Uint8Array(Math.min(extent.length, 1 << 20));
          for (let at = 0; at < extent.length; at += buffer.length) {
            const piece = buffer.subarray(0, Math.min(buffer.length, extent.length - at));
            await image.readAt(extent.offset + at, piece);
            await base.backend.writeAt(extent.offset + at, piece);
          }
        } else if (extent.kind === 'zero') {
          if (canDiscard(base.backend)) await base.backend.writeZeroes(extent.offset, extent.length);
          else await base.backend.writeAt(extent.offset, new Uint8Array(extent.length));
        }
        done += extent.length;
      }
      await base.backend.flush();
      if (!options.keep) {
        for (const extent of extents) if (extent.kind !== 'unallocated') await dropToBacking(image, extent.offset, extent.length);
      }
      options.onProgress?.(1);
    } finally {
      await base.backend.close();
    }
  } finally {
    await top.backend.close();
  }
}

/** Makes a range of a qcow2 image unallocated again (reads fall through to the backing file). */
async function dropToBacking(image: Qcow2Backend, offset: number, length: number): Promise<void> {
  await image.unmap(offset, length);
}

/**
 * `qemu-img rebase`: changes the backing file. Safe mode copies into the
 * image every cluster where the old and new backing files differ, so the
 * guest sees the same disk; `unsafe` only rewrites the name.
 */
export async function rebaseImage(
  path: string,
  options: { backingFile: string | undefined; backingFormat?: ImageFormat; unsafe?: boolean; onProgress?: Progress },
): Promise<void> {
  const opened = await openImage(path, options.unsafe ? { backing: false } : {});
  try {
    if (!(opened.backend instanceof Qcow2Backend)) throw new ImageToolError('only qcow2 images have a backing file');
    const image = opened.backend;
    await refuseCorrupt(image, path, 'be rebased');
    if (!options.unsafe) {
      let next: OpenedImage | undefined;
      if (options.backingFile !== undefined) {
        next = await openImage(resolveBackingPath(path, options.backingFile), { readOnly: true, ...(options.backingFormat ? { format: options.backingFormat } : {}) });
      }
      try {
        const extents = await image.map(0, image.size);
        const chunk = image.clusterSize;
        const oldBytes = new Uint8Array(chunk);
        const newBytes = new Uint8Array(chunk);
        for (const extent of extents) {
          if (extent.kind !== 'unallocated') continue;
          for (let at = extent.offset; at < extent.offset + extent.length; at += chunk) {
            options.onProgress?.(at / image.size);
            const length = Math.min(chunk, extent.offset + extent.length - at);
            await readLayer(image.backing, at, oldBytes.subarray(0, length));
            await readLayer(next?.backend, at, newBytes.subarray(0, length));
            if (Buffer.compare(oldBytes.subarray(0, length), newBytes.subarray(0, length)) !== 0) await image.writeAt(at, oldBytes.subarray(0, length));
          }
        }
      } finally {
        await next?.backend.close();
      }
    }
    await image.setBackingFile(options.backingFile, options.backingFile === undefined ? undefined : (options.backingFormat ?? (await detectFormat(resolveBackingPath(path, options.backingFile)))));
    options.onProgress?.(1);
  } finally {
    await opened.backend.close();
  }
}

async function detectFormat(path: string): Promise<ImageFormat> {
  const opened = await openImage(path, { readOnly: true, backing: false });
  await opened.backend.close();
  return opened.format;
}

async function readLayer(backend: BlockBackend | undefined, offset: number, into: Uint8Array): Promise<void> {
  into.fill(0);
  if (backend === undefined || offset >= backend.size) return;
  await backend.readAt(offset, into.subarray(0, Math.min(into.length, backend.size - offset)));
}

/** `qemu-img resize`: an absolute size, or relative with `+`/`-` handled by the caller. */
export async function resizeImage(path: string, size: number, options: { shrink?: boolean } = {}): Promise<void> {
  const opened = await openImage(path, { backing: false });
  try {
    if (!canResize(opened.backend)) throw new ImageToolError('this image cannot be resized');
    if (size < opened.backend.size && !options.shrink) {
      throw new ImageToolError('Use the --shrink option to perform a shrink operation.');
    }
    await refuseCorrupt(opened.backend, path, 'be resized');
    await opened.backend.resize(size, options);
  } finally {
    await opened.backend.close();
  }
}

/** `qemu-img snapshot`: list, create, apply or delete internal snapshots. */
export async function snapshotImage(path: string, action: 'list' | 'create' | 'apply' | 'delete', name?: string) {
  const opened = await openImage(path, { readOnly: action === 'list', backing: false });
  try {
    const backend = opened.backend;
    if (!hasSnapshots(backend)) throw new ImageToolError(`${opened.format} images have no internal snapshots`);
    if (action === 'list') return await backend.listSnapshots();
    if (name === undefined) throw new ImageToolError('a snapshot name is needed');
    await refuseCorrupt(backend, path, { create: 'take a snapshot', apply: 'go back to a snapshot', delete: 'lose a snapshot' }[action]);
    if (action === 'create') await backend.createSnapshot(name);
    else if (action === 'apply') await (backend as Qcow2Backend).applySnapshot(name);
    else await (backend as Qcow2Backend).deleteSnapshot(name);
    return [];
  } catch (error) {
    if (error instanceof BlockError) throw new ImageToolError(error.message);
    throw error;
  } finally {
    await opened.backend.close();
  }
}
