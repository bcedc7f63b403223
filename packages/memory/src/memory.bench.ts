import { FrameAccess, guestAddress } from '@tsvirt/interfaces';
import { Bench } from 'tinybench';
import { GuestRam } from './guest-ram.js';

const SIZE = 16 << 20;
const WORDS = SIZE / 4;
const BULK = 1 << 20;

/**
 * Guest memory throughput beside a bare Uint32Array of the same size in the
 * same run: the bare array is the limit.
 */
export default async function memoryBench() {
  const bare = new Uint32Array(WORDS);
  const ram = new GuestRam({ size: SIZE });
  ram.fill(guestAddress(0), SIZE, 1); // every page holds a frame, as in a running guest
  const bulkSource = new Uint8Array(BULK).fill(7);
  const bulkTarget = new Uint8Array(BULK);
  const bareBytes = new Uint8Array(bare.buffer);
  let sink = 0;

  const bench = new Bench({ time: 400, warmupTime: 100 });
  bench
    .add('bare Uint32Array: aligned 32-bit loads', () => {
      let sum = 0;
      for (let i = 0; i < WORDS; i += 16) sum = (sum + bare[i]!) | 0;
      sink ^= sum;
    })
    .add('GuestRam.readU32: aligned 32-bit loads', () => {
      let sum = 0;
      for (let address = 0; address < SIZE; address += 64) sum = (sum + ram.readU32(address as never)) | 0;
      sink ^= sum;
    })
    .add('GuestRam frameOf (TLB-style) aligned 32-bit loads', () => {
      let sum = 0;
      for (let page = 0; page < SIZE; page += 4096) {
        const frame = ram.frameOf(page as never, FrameAccess.Read)!;
        const words = frame.u32;
        const base = frame.byteOffset >>> 2;
        for (let i = 0; i < 1024; i += 16) sum = (sum + words[base + i]!) | 0;
      }
      sink ^= sum;
    })
    .add('bare Uint32Array: aligned 32-bit stores', () => {
      for (let i = 0; i < WORDS; i += 16) bare[i] = i;
    })
    .add('GuestRam.writeU32: aligned 32-bit stores', () => {
      for (let address = 0; address < SIZE; address += 64) ram.writeU32(address as never, address);
    })
    .add('bare Uint8Array: 1 MiB bulk copy in', () => {
      bareBytes.set(bulkSource, 4096);
    })
    .add('GuestRam.write: 1 MiB bulk copy in', () => {
      ram.write(guestAddress(4096), bulkSource);
    })
    .add('bare Uint8Array: 1 MiB bulk copy out', () => {
      bulkTarget.set(bareBytes.subarray(4096, 4096 + BULK));
    })
    .add('GuestRam.read: 1 MiB bulk copy out', () => {
      ram.read(guestAddress(4096), bulkTarget);
    });
  await bench.run();
  if (sink === 0.5) console.log(sink); // keep the loads alive

  const accessesPerRun: Record<string, number> = {};
  for (const task of bench.tasks) accessesPerRun[task.name] = task.name.includes('bulk') ? BULK : SIZE / 64;
  const rate = (name: string): number => {
    const task = bench.tasks.find((candidate) => candidate.name === name)!;
    const result = task.result as { throughput?: { mean: number }; hz?: number } | undefined;
    const runsPerSecond = result?.throughput?.mean ?? result?.hz ?? 0;
    return runsPerSecond * accessesPerRun[name]!;
  };
  const pairs: Array<[string, string, string]> = [
    ['aligned 32-bit loads (accessor)', 'bare Uint32Array: aligned 32-bit loads', 'GuestRam.readU32: aligned 32-bit loads'],
    ['aligned 32-bit loads (frameOf fast path)', 'bare Uint32Array: aligned 32-bit loads', 'GuestRam frameOf (TLB-style) aligned 32-bit loads'],
    ['aligned 32-bit stores (accessor)', 'bare Uint32Array: aligned 32-bit stores', 'GuestRam.writeU32: aligned 32-bit stores'],
    ['bulk copy into guest (MB/s)', 'bare Uint8Array: 1 MiB bulk copy in', 'GuestRam.write: 1 MiB bulk copy in'],
    ['bulk copy out of guest (MB/s)', 'bare Uint8Array: 1 MiB bulk copy out', 'GuestRam.read: 1 MiB bulk copy out'],
  ];
  return [
    {
      title: 'Guest memory throughput',
      description: `16 MiB guest, every page backed by a frame; millions of accesses per second (bulk rows: MB/s). The bare typed array of the same size, in the same run, is the limit; the target is at least half of it.`,
      columns: ['operation', 'bare typed array', 'GuestRam', 'fraction of bare'],
      rows: pairs.map(([label, bareName, ramName]) => {
        const limit = rate(bareName) / 1e6;
        const ours = rate(ramName) / 1e6;
        return [label, limit, ours, `${((ours / limit) * 100).toFixed(0)} %`];
      }),
    },
  ];
}
