import { ImageLockedError } from './errors.js';
import { ERRNO, type StorageNative } from './native.js';

/*
 * QEMU's image locking (block/file-posix.c), byte for byte, so that our
 * processes and QEMU's exclude each other. Each block-layer permission has a
 * bit; a file description that holds permission i takes a shared lock on byte
 * 100 + i, and one that does not let others have permission i takes a shared
 * lock on byte 200 + i. Before using the file it asks the kernel whether any
 * other description holds 200 + i for a permission it wants ("Failed to get
 * "write" lock"), or 100 + i for one it refuses to share ("Failed to get shared
 * "write" lock"). The locks are Linux open-file-description locks, owned by
 * the open file, so two opens in one process exclude each other too, and they
 * vanish when the file is closed (or its process dies).
 */

/** The permission bits QEMU locks (graph-mod, bit 4 before QEMU 7.0, is no longer one, so byte 104/204 is never taken). */
export const PERMISSION = { consistentRead: 0x1, write: 0x2, writeUnchanged: 0x4, resize: 0x8 } as const;
const PERMISSION_NAMES = ['consistent read', 'write', 'write unchanged', 'resize'] as const;
const ALL_PERMISSIONS = 0xf;
const PERMISSION_BASE = 100;
const SHARED_BASE = 200;

/** What an opener wants (`permissions`) and what it lets others have (`shared`). */
export interface LockRequest {
  permissions: number;
  shared: number;
}

/**
 * The permissions QEMU takes on an image's file: a writer (of qcow2 metadata
 * or of a disk's data) writes and may resize, and lets others read but not
 * write or resize; a reader (a backing file, `qemu-img info`) reads and does
 * not let the data change under it; `forceShare` (qemu-img -U) shares all.
 */
export function lockRequestFor(write: boolean, forceShare: boolean): LockRequest {
  if (forceShare) return { permissions: PERMISSION.consistentRead, shared: ALL_PERMISSIONS };
  const shared = PERMISSION.consistentRead | PERMISSION.writeUnchanged;
  return write ? { permissions: PERMISSION.consistentRead | PERMISSION.write | PERMISSION.resize, shared } : { permissions: PERMISSION.consistentRead, shared };
}

function lockError(message: string, name: string, errno: number): ImageLockedError {
  // As QEMU: a lock held elsewhere is the common case and needs no errno; any other failure names it.
  const why = errno === -ERRNO.EAGAIN || errno === -ERRNO.EACCES ? '' : ` (errno ${-errno})`;
  return new ImageLockedError(`${message}${why}\nIs another process using the image [${name}]?`);
}

/**
 * Takes the lock bytes for `request` on `fd` and checks no other file
 * description conflicts; on a conflict releases what it took and throws
 * ImageLockedError with QEMU's message.
 */
export function applyImageLocks(native: StorageNative, fd: number, name: string, request: LockRequest): void {
  const taken: number[] = [];
  const release = () => {
    for (const offset of taken) native.ofdLock(fd, offset, 1, 0);
  };
  try {
    for (let bit = 0; bit < PERMISSION_NAMES.length; bit++) {
      const mask = 1 << bit;
      for (const offset of [request.permissions & mask ? PERMISSION_BASE + bit : -1, request.shared & mask ? -1 : SHARED_BASE + bit]) {
        if (offset < 0) continue;
        const result = native.ofdLock(fd, offset, 1, 1);
        if (result !== 0) throw lockError(`Failed to lock byte ${offset}`, name, result);
        taken.push(offset);
      }
    }
    // Our own description's locks never conflict with us: only other openers are found.
    for (let bit = 0; bit < PERMISSION_NAMES.length; bit++) {
      if (!(request.permissions & (1 << bit))) continue;
      const result = native.ofdTest(fd, SHARED_BASE + bit, 1, 1);
      if (result !== 0) throw lockError(`Failed to get "${PERMISSION_NAMES[bit]}" lock`, name, result);
    }
    for (let bit = 0; bit < PERMISSION_NAMES.length; bit++) {
      if (request.shared & (1 << bit)) continue;
      const result = native.ofdTest(fd, PERMISSION_BASE + bit, 1, 1);
      if (result !== 0) throw lockError(`Failed to get shared "${PERMISSION_NAMES[bit]}" lock`, name, result);
    }
  } catch (error) {
    release();
    throw error;
  }
}
