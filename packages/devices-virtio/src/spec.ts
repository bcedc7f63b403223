/**
 * Numbers from the virtio 1.2 specification (OASIS), as guests' drivers use
 * them. Feature bits are bit numbers; features travel as bigint (64 bits)
 * because only configuration paths handle them.
 */

/** Device status register bits (2.1). */
export enum DeviceStatus {
  Acknowledge = 1,
  Driver = 2,
  DriverOk = 4,
  FeaturesOk = 8,
  NeedsReset = 64,
  Failed = 128,
}

/** Feature bits every transport and device shares (6). */
export enum Feature {
  RingIndirectDescriptors = 28,
  RingEventIndex = 29,
  Version1 = 32,
  AccessPlatform = 33,
  RingPacked = 34,
  InOrder = 35,
}

/** Device types (5). */
export enum DeviceType {
  Network = 1,
  Block = 2,
  Console = 3,
  Entropy = 4,
  Balloon = 5,
  Scsi = 8,
}

/** Descriptor flags of a split virtqueue (2.7.5). */
export enum DescriptorFlag {
  Next = 1,
  Write = 2,
  Indirect = 4,
}

/** The driver's flag in the available ring: no interrupt wanted (without EVENT_IDX). */
export const AVAILABLE_NO_INTERRUPT = 1;
/** The device's flag in the used ring: no notification wanted (without EVENT_IDX). */
export const USED_NO_NOTIFY = 1;
/** Queue and configuration MSI-X vector meaning "none". */
export const NO_VECTOR = 0xffff;

export function hasFeature(features: bigint, bit: number): boolean {
  return ((features >> BigInt(bit)) & 1n) === 1n;
}

export function featureMask(...bits: number[]): bigint {
  return bits.reduce((mask, bit) => mask | (1n << BigInt(bit)), 0n);
}
