import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { receiveMigration } from '../engine/destination.js';
import { startMigration } from '../engine/source.js';
import { MigrationIncompatibleError } from '../errors.js';
import { FakeVm, firstDifferentPage } from '../testing/index.js';
import { connectMigration, listenForMigration, type SocketAddress } from './socket-channel.js';

const MIB = 1024 * 1024;
const directory = mkdtempSync(path.join(tmpdir(), 'tsvirt-migration-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function migrateOver(address: SocketAddress, destinationOverrides = {}, multifd = 0) {
  const listener = await listenForMigration(address);
  const source = new FakeVm({ memorySize: 4 * MIB, running: true, seed: 3 });
  source.populate(21);
  source.step(1000);
  const destination = new FakeVm({ memorySize: 4 * MIB, descriptor: destinationOverrides });
  const incoming = listener.accept().then(async (channel) => {
    try {
      return await receiveMigration(destination, channel, { multifd: { accept: () => listener.accept() } });
    } finally {
      channel.destroy();
    }
  });
  incoming.catch(() => {});
  const channel = await connectMigration(listener.address);
  const migration = startMigration(source, channel, multifd > 0 ? { multifd: { channels: multifd, connect: () => connectMigration(listener.address) } } : {});
  const stats = await migration.done;
  const received = await incoming.then(
    (result) => ({ result, error: undefined }),
    (error: unknown) => ({ result: undefined, error }),
  );
  channel.destroy();
  await listener.close();
  return { source, destination, stats, error: migration.error, received };
}

describe('socket transports', () => {
  it('migrates over TCP on 127.0.0.1', async () => {
    const { source, destination, stats, received } = await migrateOver({ host: '127.0.0.1', port: 0 });
    expect(stats.status).toBe('completed');
    expect(received.error).toBeUndefined();
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    expect(destination.saveDevices()).toEqual(source.saveDevices());
    expect(destination.running).toBe(true);
    expect(source.running).toBe(false);
    expect(stats.ram.transferred).toBeGreaterThan(3 * MIB * 0.7);
  });

  it('migrates over three TCP connections with multifd', async () => {
    const { source, destination, stats, received } = await migrateOver({ host: '127.0.0.1', port: 0 }, {}, 2);
    expect(received.error).toBeUndefined();
    expect(stats.status).toBe('completed');
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
    expect(destination.saveDevices()).toEqual(source.saveDevices());
  });

  it('migrates over a Unix socket', async () => {
    const { source, destination, stats } = await migrateOver({ path: path.join(directory, 'incoming.sock') });
    expect(stats.status).toBe('completed');
    expect(firstDifferentPage(source.memory, destination.memory)).toBe(-1);
  });

  it('a refusing destination over TCP: the source gets the mismatch and keeps running', async () => {
    const { source, destination, stats, error, received } = await migrateOver({ host: '127.0.0.1', port: 0 }, { machineType: 'other' });
    expect(stats.status).toBe('failed');
    expect(error).toBeInstanceOf(MigrationIncompatibleError);
    expect(received.error).toBeInstanceOf(MigrationIncompatibleError);
    expect(source.running).toBe(true);
    expect(destination.running).toBe(false);
  });

  it('fails clearly when nobody listens', async () => {
    await expect(connectMigration({ path: path.join(directory, 'nobody.sock') })).rejects.toThrow(/cannot connect/);
  });
});
