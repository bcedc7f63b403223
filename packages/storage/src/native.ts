import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The native addon (native/storage-native.c): the Linux file calls Node does
 * not offer. Every call returns a number, negative errno on failure.
 */
export interface StorageNative {
  /** mode 0 unlocks, 1 takes a shared (read) lock, 2 an exclusive one; never waits. */
  ofdLock(fd: number, start: number, length: number, mode: 0 | 1 | 2): number;
  /** 0 if the lock could be taken, -EAGAIN if another file description holds a conflicting one. */
  ofdTest(fd: number, start: number, length: number, exclusive: 0 | 1): number;
  /** lseek with SEEK_DATA (3) or SEEK_HOLE (4); -ENXIO when no data follows. */
  seek(fd: number, offset: number, whence: 3 | 4): number;
  /** fallocate(2) with `mode` (FALLOC); -EOPNOTSUPP where the file system cannot. */
  fallocate(fd: number, offset: number, length: number, mode: number): number;
  /** One zstd frame at the default level; its length, or -ENOSPC if it does not fit `destination`. */
  zstdCompress(source: Uint8Array, destination: Uint8Array): number;
}

/** Linux errno values the callers tell apart. */
export const ERRNO = { EAGAIN: 11, EACCES: 13, ENXIO: 6, ENOSPC: 28, EOPNOTSUPP: 95, ENOSYS: 38, EINVAL: 22 } as const;

/** fallocate(2) modes. */
export const FALLOC = { KEEP_SIZE: 0x01, PUNCH_HOLE: 0x02, ZERO_RANGE: 0x10 } as const;

const ADDON_FILE = 'storage-native.node';

/**
 * Where the addon is, seen from this module: beside the bundle in dist/ (or
 * one folder up from dist/testing/), or node-gyp's build tree when the
 * sources run directly (tests).
 */
function candidates(): string[] {
  return [`./${ADDON_FILE}`, `../${ADDON_FILE}`, '../native/build/Release/storage_native.node', `../dist/${ADDON_FILE}`].map((relative) =>
    fileURLToPath(new URL(relative, import.meta.url)),
  );
}

/** Why the addon did not load, for the warning and for tests that insist on it. */
export interface NativeLoad {
  native: StorageNative | undefined;
  problem: string | undefined;
}

/*
 * The addon is a fact about the host, fixed once loaded (require caches it in
 * any case); this memo only saves looking for it again.
 */
let loaded: NativeLoad | undefined;

/** Loads the addon once; undefined (after one warning) where it cannot load, as QEMU runs with locking=off. */
export function loadNative(): NativeLoad {
  if (loaded !== undefined) return loaded;
  let problem: string | undefined;
  let native: StorageNative | undefined;
  if (process.platform !== 'linux') problem = `the native addon is Linux-only (this is ${process.platform})`;
  else {
    const path = candidates().find((candidate) => existsSync(candidate));
    if (path === undefined) problem = `${ADDON_FILE} was not found (build @tsvirt/storage with its build script)`;
    else {
      try {
        native = createRequire(import.meta.url)(path) as StorageNative;
      } catch (error) {
        problem = `${path} does not load: ${(error as Error).message}`;
      }
    }
  }
  if (problem !== undefined) {
    process.emitWarning(`${problem}; images are opened without QEMU's file locks and raw files without hole detection`, {
      code: 'TSVIRT_STORAGE_NO_NATIVE',
    });
  }
  loaded = { native, problem };
  return loaded;
}
