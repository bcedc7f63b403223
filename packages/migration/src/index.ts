export * from './errors.js';
export {
  checkCompatibility,
  ramRegionsOf,
  readMachineDescriptor,
  supportsPostcopy,
  type MachineDescriptor,
  type MigratableVm,
  type PostcopyGuard,
  type PostcopyVm,
} from './vm.js';
export { crc32c } from './stream/crc32c.js';
export { DEFAULT_FRAME_LIMITS, STREAM_VERSION, type FrameLimits } from './stream/format.js';
export { xbzrleDecode, xbzrleEncode } from './stream/xbzrle.js';
export type { XbzrleCacheStats } from './stream/xbzrle-cache.js';
export { hostTiming, type MigrationChannel, type MigrationTiming } from './transport/channel.js';
export { createChannelPair, type AdvancingClock, type ChannelPairOptions } from './transport/memory-channel.js';
export type { AutoConvergeOptions, MigrationOptions } from './engine/options.js';
export { DEFAULT_DEADLINES, type MigrationDeadlines } from './engine/deadlines.js';
export { toQueryMigrate, type MigrationEvent, type MigrationStats, type MigrationStatus, type RamStats, type SwitchoverReason } from './engine/stats.js';
export { startMigration, startOfflineMigration, type OutgoingMigration } from './engine/source.js';
export { receiveMigration, type IncomingEvent, type IncomingOptions, type IncomingResult } from './engine/destination.js';
export { connectMigration, listenForMigration, socketChannel, type ConnectOptions, type MigrationListener, type SocketAddress } from './transport/socket-channel.js';
export { fileReadChannel, fileWriteChannel } from './transport/file-channel.js';
export { restoreFromFile, saveToFile } from './save-restore.js';
