export { ImageCorruptError, ImageFormatError, ImageLockedError, ImageToolError, ImageUnsupportedError } from './errors.js';
export { type ImageFile, MemoryImageFile, NodeImageFile } from './image-file.js';
export { ImageLocks } from './image-locks.js';
export { RawBackend } from './raw.js';
export { type ImageFormat, type OpenedImage, type OpenImageOptions, openImage, probeFormat, resolveBackingPath, resolveDataFilePath } from './open.js';
export { probeQcow2, Qcow2Backend, type Qcow2MapExtent, type Qcow2OpenOptions, type Qcow2Probe } from './qcow2/qcow2.js';
export { type OverlapCheck } from './qcow2/overlap.js';
export { createQcow2, type Preallocation, type Qcow2CreateOptions } from './qcow2/create.js';
export { type CheckReport, checkQcow2, repairRefcounts, type RepairMode } from './qcow2/check.js';
export { type Qcow2Snapshot, readSnapshotTable } from './qcow2/snapshots.js';
export type { CompressionType, Qcow2Header } from './qcow2/format.js';
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_REPLY_TIMEOUT_MS,
  NbdClient,
  type NbdAddress,
  type NbdConnectOptions,
  NbdProtocolError,
  type NbdProtocolProblem,
  NbdTimeoutError,
  parseNbdUri,
} from './nbd/client.js';
export {
  DEFAULT_NBD_SERVER_LIMITS,
  type InFlight,
  type NbdExport,
  type NbdPauseReason,
  NbdServer,
  type NbdServerEvent,
  type NbdServerLimits,
  type NbdServerOptions,
  type NbdServerUsage,
} from './nbd/server.js';
export { isNbdUri } from './open.js';
export { imageInfo, type ImageInfo } from './tools/info.js';
export { mapImage, type MapEntry } from './tools/map.js';
export {
  commitImage,
  compareImages,
  type ConvertOptions,
  convertImage,
  copyContents,
  createImage,
  type CreateImageOptions,
  type Progress,
  rebaseImage,
  resizeImage,
  snapshotImage,
} from './tools/operations.js';
export { type CommandOutput, runImgCommand } from './tools/img-command.js';
export { formatSize, parseSize } from './tools/size.js';
export { type PoolInfo, type PoolState, StorageConnection, StoragePool, type VolumeInfo } from './pools/pool.js';
export { type PoolDefinition, parsePoolXml, parseVolumeXml, poolToXml, type VolumeDefinition, volumeToXml } from './pools/xml.js';
export { amendImage, type AmendOptions } from './tools/amend.js';
export { type Measurement, measureImage } from './tools/measure.js';
