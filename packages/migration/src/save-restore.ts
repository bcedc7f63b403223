import { rename, rm } from 'node:fs/promises';
import { receiveMigration, type IncomingOptions, type IncomingResult } from './engine/destination.js';
import type { MigrationOptions } from './engine/options.js';
import { startOfflineMigration } from './engine/source.js';
import type { MigrationStats } from './engine/stats.js';
import { fileReadChannel, fileWriteChannel } from './transport/file-channel.js';
import type { MigratableVm } from './vm.js';

/**
 * Saves `vm` to `path` (like `virsh save`): pauses it, writes memory and
 * device state as a migration stream, and leaves it paused. The file appears
 * only once complete (written beside it, synced, then renamed), so a failed
 * save never leaves a truncated image; on failure the machine resumes if it
 * was running. Returns the final statistics; throws the typed error on failure.
 */
export async function saveToFile(vm: MigratableVm, path: string, options: Omit<MigrationOptions, 'autoConverge' | 'xbzrle' | 'timeout'> = {}): Promise<MigrationStats> {
  const partial = `${path}.partial`;
  const channel = await fileWriteChannel(partial);
  const migration = startOfflineMigration(vm, channel, options);
  const stats = await migration.done;
  if (stats.status !== 'completed') {
    channel.destroy();
    await rm(partial, { force: true });
    throw migration.error;
  }
  await rename(partial, path);
  return stats;
}

/** Restores a machine saved with {@link saveToFile} into `vm` (paused; resumed once loaded unless `autoStart` is false). */
export async function restoreFromFile(vm: MigratableVm, path: string, options: IncomingOptions = {}): Promise<IncomingResult> {
  const channel = await fileReadChannel(path);
  try {
    return await receiveMigration(vm, channel, options);
  } finally {
    channel.destroy();
  }
}
