export { type VirtioDevice, type VirtioDeviceContext } from './device.js';
export { BALLOON_STAT_NAMES, BalloonFeature, type BalloonStatName, VirtioBalloon, type VirtioBalloonOptions } from './balloon/virtio-balloon.js';
export { BlockFeature, VirtioBlk, type VirtioBlkOptions } from './block/virtio-blk.js';
export { ConsoleFeature, VirtioConsole, type VirtioConsoleOptions, type VirtioConsolePort } from './console/virtio-console.js';
export { VIRTIO_MMIO_SIZE, VirtioMmio, type VirtioMmioState } from './mmio/virtio-mmio.js';
export { VirtioPci, type VirtioPciOptions, type VirtioPciState } from './pci/virtio-pci.js';
export { type DescriptorBuffer, type DescriptorChain, QueueError, readFromChain, SplitQueue, type SplitQueueState, writeToChain } from './queue/split-queue.js';
export { VirtioRng, type VirtioRngOptions } from './rng/virtio-rng.js';
export { DeviceStatus, DeviceType, DescriptorFlag, Feature, NO_VECTOR } from './spec.js';
