import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@tsvirt/interfaces/testing';
import { MigrationIncompatibleError, MigrationStreamError } from './errors.js';
import { restoreFromFile, saveToFile } from './save-restore.js';
import { FakeVm, firstDifferentPage, runSimulatedMigration } from './testing/index.js';

const MIB = 1024 * 1024;
const directory = mkdtempSync(path.join(tmpdir(), 'tsvirt-save-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function savedGuest(): FakeVm {
  const vm = new FakeVm({ memorySize: 2 * MIB, running: true, seed: 9 });
  vm.populate(4, 0.5);
  vm.step(300);
  return vm;
}

describe('save and restore', () => {
  it('saves to a file and restores an identical machine', async () => {
    const vm = savedGuest();
    const file = path.join(directory, 'guest.sav');
    const stats = await saveToFile(vm, file);
    expect(stats.status).toBe('completed');
    expect(stats.switchoverReason).toBe('offline');
    expect(vm.running).toBe(false);
    expect(existsSync(`${file}.partial`)).toBe(false);
    const restored = new FakeVm({ memorySize: 2 * MIB });
    const result = await restoreFromFile(restored, file);
    expect(result.mode).toBe('offline');
    expect(firstDifferentPage(vm.memory, restored.memory)).toBe(-1);
    expect(restored.saveDevices()).toEqual(vm.saveDevices());
    expect(restored.running).toBe(true);
  });

  it('refuses a damaged file and never runs the machine', async () => {
    const file = path.join(directory, 'damaged.sav');
    await saveToFile(savedGuest(), file);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x40;
    writeFileSync(file, bytes);
    const restored = new FakeVm({ memorySize: 2 * MIB });
    await expect(restoreFromFile(restored, file)).rejects.toBeInstanceOf(MigrationStreamError);
    expect(restored.running).toBe(false);
  });

  it('refuses a cut file, and data after the end marker', async () => {
    const file = path.join(directory, 'cut.sav');
    await saveToFile(savedGuest(), file);
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 3));
    const cut = new FakeVm({ memorySize: 2 * MIB });
    await expect(restoreFromFile(cut, file)).rejects.toMatchObject({ reason: 'truncated' });
    writeFileSync(file, Buffer.concat([bytes, Buffer.from([1, 2, 3])]));
    const padded = new FakeVm({ memorySize: 2 * MIB });
    await expect(restoreFromFile(padded, file)).rejects.toMatchObject({ reason: 'truncated' });
    expect(cut.running || padded.running).toBe(false);
  });

  it('refuses to restore into a machine of another size', async () => {
    const file = path.join(directory, 'size.sav');
    await saveToFile(savedGuest(), file);
    const other = new FakeVm({ memorySize: 4 * MIB });
    await expect(restoreFromFile(other, file)).rejects.toBeInstanceOf(MigrationIncompatibleError);
  });

  it('refuses a file that is not a migration stream', async () => {
    const file = path.join(directory, 'text.sav');
    writeFileSync(file, 'hello, this is not a saved machine');
    await expect(restoreFromFile(new FakeVm({ memorySize: MIB }), file)).rejects.toMatchObject({ reason: 'not-a-stream' });
  });
});

describe('offline migration', () => {
  it('pauses, moves everything once, and the destination runs', async () => {
    const clock = new ManualClock();
    const source = new FakeVm({ memorySize: 2 * MIB, clock, workload: { writesPerSecond: 50_000, pattern: 'uniform' }, running: true });
    source.populate(8);
    const destination = new FakeVm({ memorySize: 2 * MIB });
    const result = await runSimulatedMigration({ source, destination, clock, bytesPerSecond: MIB, offline: true });
    expect(result.stats.status).toBe('completed');
    expect(result.stats.ram.iterations).toBe(0);
    expect(result.stats.ram.normal + result.stats.ram.duplicate).toBe(512);
    // The whole transfer is downtime: about 2 s at 1 MiB/s (less for zero pages).
    expect(result.stats.downtime!).toBeGreaterThan(1000);
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    expect(destination.saveDevices()).toEqual(source.saveDevices());
  });
});
