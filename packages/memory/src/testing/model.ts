import { FrameAccess, PAGE_SIZE, guestAddress } from '@tsvirt/interfaces';
import fc from 'fast-check';
import { FramePool } from '../frame-pool.js';
import { GuestRam } from '../guest-ram.js';

/** Three small memories sharing one pool: enough pages to merge within and across guests. */
const MEMORIES = 3;
const PAGES = 6;
const SIZE = PAGES * PAGE_SIZE;

export type RamModelCommand =
  | { kind: 'write'; memory: number; address: number; bytes: number[] }
  | { kind: 'write-frame'; memory: number; address: number; value: number }
  | { kind: 'fill'; memory: number; address: number; length: number; value: number }
  | { kind: 'discard'; memory: number; address: number; length: number }
  | { kind: 'merge'; memory: number; page: number; source: number; sourcePage: number }
  | { kind: 'unshare'; memory: number; page: number }
  | { kind: 'release-if-zero'; memory: number; page: number }
  | { kind: 'dirty'; memory: number; action: 'start' | 'fetch' | 'stop' }
  | { kind: 'save-restore'; memory: number };

/** Random command sequences over three 6-page memories in one pool. */
export function guestRamModelCommands(): fc.Arbitrary<RamModelCommand[]> {
  const memory = fc.integer({ min: 0, max: MEMORIES - 1 });
  const page = fc.integer({ min: 0, max: PAGES - 1 });
  const address = fc.integer({ min: 0, max: SIZE - 1 });
  const byte = fc.integer({ min: 0, max: 255 });
  // Few distinct byte values, so identical pages (merge candidates) are common.
  const smallBytes = fc.array(fc.constantFrom(0, 1, 2), { minLength: 1, maxLength: 64 });
  const command: fc.Arbitrary<RamModelCommand> = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), memory, address, bytes: smallBytes }),
    fc.record({ kind: fc.constant('write-frame' as const), memory, address: address.map((x) => x & ~3), value: fc.constantFrom(0, 1, 0x0101_0101) }),
    fc.record({ kind: fc.constant('fill' as const), memory, address, length: fc.integer({ min: 0, max: 3 * PAGE_SIZE }), value: fc.oneof(fc.constantFrom(0, 1), byte) }),
    fc.record({ kind: fc.constant('discard' as const), memory, address, length: fc.integer({ min: 0, max: 3 * PAGE_SIZE }) }),
    fc.record({ kind: fc.constant('merge' as const), memory, page, source: memory, sourcePage: page }),
    fc.record({ kind: fc.constant('unshare' as const), memory, page }),
    fc.record({ kind: fc.constant('release-if-zero' as const), memory, page }),
    fc.record({ kind: fc.constant('dirty' as const), memory, action: fc.constantFrom('start' as const, 'fetch' as const, 'stop' as const) }),
    fc.record({ kind: fc.constant('save-restore' as const), memory }),
  );
  return fc.array(command, { maxLength: 60 });
}

class Model {
  readonly bytes = new Map<number, number>();
  dirty: Set<number> | undefined;

  get(address: number): number {
    return this.bytes.get(address) ?? 0;
  }

  set(address: number, value: number): void {
    if (value === 0) this.bytes.delete(address);
    else this.bytes.set(address, value);
    this.dirty?.add(Math.floor(address / PAGE_SIZE));
  }
}

/**
 * Runs `commands` against real memories and a Map model; throws at the first
 * disagreement in contents, dirty pages or accounting.
 */
export function runGuestRamModel(commands: readonly RamModelCommand[]): void {
  const pool = new FramePool();
  const rams = Array.from({ length: MEMORIES }, () => new GuestRam({ size: SIZE, pool }));
  const models = rams.map(() => new Model());
  const check = (condition: boolean, message: () => string): void => {
    if (!condition) throw new Error(message());
  };

  commands.forEach((command, step) => {
    const ram = rams[command.memory]!;
    const model = models[command.memory]!;
    const where = `step ${step} ${JSON.stringify(command)}`;
    switch (command.kind) {
      case 'write': {
        const length = Math.min(command.bytes.length, SIZE - command.address);
        ram.write(guestAddress(command.address), Uint8Array.from(command.bytes.slice(0, length)));
        for (let i = 0; i < length; i++) model.set(command.address + i, command.bytes[i]!);
        break;
      }
      case 'write-frame': {
        const frame = ram.frameOf(guestAddress(command.address), FrameAccess.Write)!;
        frame.view.setUint32(frame.byteOffset + (command.address % PAGE_SIZE), command.value, true);
        for (let i = 0; i < 4; i++) model.set(command.address + i, (command.value >>> (8 * i)) & 0xff);
        break;
      }
      case 'fill': {
        const length = Math.min(command.length, SIZE - command.address);
        ram.fill(guestAddress(command.address), length, command.value);
        for (let i = 0; i < length; i++) {
          // Zero-filling a frameless page changes nothing, so it is not a write.
          if (command.value === 0 && !model.bytes.has(command.address + i) && ram.frameIdOf(guestAddress(command.address + i)) < 0) continue;
          model.set(command.address + i, command.value & 0xff);
        }
        break;
      }
      case 'discard': {
        const length = Math.min(command.length, SIZE - command.address);
        const mappedBefore = new Set(Array.from({ length: PAGES }, (_, p) => p).filter((p) => ram.frameIdOf(guestAddress(p * PAGE_SIZE)) >= 0));
        ram.discard(guestAddress(command.address), length);
        for (let i = 0; i < length; i++) {
          const at = command.address + i;
          if (model.get(at) !== 0 || mappedBefore.has(Math.floor(at / PAGE_SIZE))) model.set(at, 0);
        }
        break;
      }
      case 'merge': {
        const source = rams[command.source]!;
        const at = guestAddress(command.page * PAGE_SIZE);
        const from = guestAddress(command.sourcePage * PAGE_SIZE);
        const before = ram.pageBytes(at)?.slice();
        const sourceBytes = source.pageBytes(from)?.slice();
        const merged = ram.mergeFrom(at, source, from);
        if (merged) {
          check(before !== undefined && sourceBytes !== undefined && Buffer.compare(before, sourceBytes) === 0, () => `${where}: merged pages whose bytes differ`);
          check(ram.frameIdOf(at) === source.frameIdOf(from), () => `${where}: merge did not share the frame`);
        }
        break;
      }
      case 'unshare':
        ram.unshare(guestAddress(command.page * PAGE_SIZE));
        break;
      case 'release-if-zero':
        ram.releaseIfZero(guestAddress(command.page * PAGE_SIZE));
        break;
      case 'dirty':
        if (command.action === 'start') {
          ram.startDirtyLog();
          model.dirty = new Set();
        } else if (command.action === 'stop') {
          ram.stopDirtyLog();
          model.dirty = undefined;
        } else if (model.dirty !== undefined) {
          const bitmap = ram.fetchAndClearDirty();
          const got = Array.from({ length: PAGES }, (_, p) => p).filter((p) => (bitmap[p >> 5]! >>> (p & 31)) & 1);
          // Every page the model wrote must be reported; the memory may report more (it logs writes, not changes).
          for (const page of model.dirty) check(got.includes(page), () => `${where}: page ${page} was written but is not dirty (got ${got})`);
          model.dirty.clear();
        }
        break;
      case 'save-restore': {
        const saved = JSON.parse(JSON.stringify(ram.save()));
        ram.restore(saved);
        if (model.dirty !== undefined) for (let p = 0; p < PAGES; p++) model.dirty.add(p);
        break;
      }
    }

    // Contents: every memory reads exactly what the model says.
    rams.forEach((memory, index) => {
      const all = new Uint8Array(SIZE);
      memory.read(guestAddress(0), all);
      for (let at = 0; at < SIZE; at++) {
        const expected = models[index]!.get(at);
        if (all[at] !== expected) throw new Error(`${where}: memory ${index} byte 0x${at.toString(16)} is ${all[at]}, model says ${expected}`);
      }
    });
    // Accounting: pages mapped across memories equals the pool's mapping count; frames never exceed mappings.
    const pagesMapped = rams.reduce((sum, memory) => sum + memory.stats().pagesMapped, 0);
    const stats = pool.stats();
    check(stats.pagesMapped === pagesMapped, () => `${where}: pool counts ${stats.pagesMapped} mappings, memories ${pagesMapped}`);
    check(stats.framesHeld <= stats.pagesMapped, () => `${where}: more frames than mappings`);
    check(stats.bytesSaved === (stats.pagesMapped - stats.framesHeld) * PAGE_SIZE, () => `${where}: bytesSaved inconsistent`);
  });
}
