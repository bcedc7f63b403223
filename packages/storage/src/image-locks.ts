import { ImageLockedError } from './errors.js';

/**
 * Who has which image open, so a second writer (or a writer beside readers)
 * is refused as QEMU refuses it. One registry is shared by everything in a
 * process that opens images; it is passed in, never global.
 */
export class ImageLocks {
  private readonly holders = new Map<string, { writers: number; readers: number }>();

  /** Takes a lock on `key` (a resolved path); returns its release function. */
  acquire(key: string, write: boolean, options: { shared?: boolean } = {}): () => void {
    const state = this.holders.get(key) ?? { writers: 0, readers: 0 };
    if (!options.shared) {
      if (state.writers > 0) throw new ImageLockedError(`Failed to get "${write ? 'write' : 'consistent read'}" lock: ${key} is already open for writing`);
      if (write && state.readers > 0) throw new ImageLockedError(`Failed to get "write" lock: ${key} is open by a reader that does not share writes`);
    }
    if (write) state.writers++;
    else state.readers++;
    this.holders.set(key, state);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (write) state.writers--;
      else state.readers--;
      if (state.writers === 0 && state.readers === 0) this.holders.delete(key);
    };
  }
}
