import { PAGE_SIZE, StateReader, type GuestMemory, type JsonValue } from '@tsvirt/interfaces';

/**
 * What a machine is, for the configuration check: the destination refuses a
 * machine it cannot run before a single page moves.
 */
export interface MachineDescriptor {
  /** The machine type, e.g. `pc-i440fx-1`. */
  readonly machineType: string;
  /** The CPU model the guest sees, e.g. `qemu64`. */
  readonly cpuModel: string;
  readonly vcpus: number;
  /** Guest-physical size (RAM and holes). */
  readonly memorySize: number;
  /** RAM regions, sorted; the destination's must be identical. */
  readonly ramRegions: readonly { readonly start: number; readonly size: number }[];
  /** Ids of the components in the device state tree; the destination must have each. */
  readonly devices: readonly string[];
  /** CPU and machine features the guest may be using; the destination must offer each. */
  readonly features: readonly string[];
}

/**
 * What a virtual machine offers the migration engine, on either end.
 *
 * The source is paused only for the switchover; the destination is created
 * paused and resumed only after the whole stream is verified.
 */
export interface MigratableVm {
  /** Guest memory with its dirty log (startDirtyLog / fetchAndClearDirty / stopDirtyLog). */
  readonly memory: GuestMemory;
  /** True while the vCPUs run. */
  readonly running: boolean;
  pause(): void;
  resume(): void;
  /** The device state tree: JSON-compatible, keyed by component id, each with a `version`. */
  saveDevices(): JsonValue;
  /** Restores a device state tree, treating it as untrusted (throws `StateError`, changes nothing, on bad input). */
  restoreDevices(state: unknown): void;
  /** How much of each second the vCPUs are held back, 0..99 (auto-converge). */
  readonly cpuThrottlePercentage: number;
  setCpuThrottle(percentage: number): void;
  describe(): MachineDescriptor;
}

const MAX_NAME = 256;
const MAX_LIST = 4096;

/** Every reason `destination` cannot run a machine described by `source`; empty when it can. */
export function checkCompatibility(source: MachineDescriptor, destination: MachineDescriptor): string[] {
  const mismatches: string[] = [];
  if (source.machineType !== destination.machineType) mismatches.push(`machine type ${source.machineType} (destination: ${destination.machineType})`);
  if (source.cpuModel !== destination.cpuModel) mismatches.push(`CPU model ${source.cpuModel} (destination: ${destination.cpuModel})`);
  if (source.vcpus !== destination.vcpus) mismatches.push(`${source.vcpus} vCPUs (destination: ${destination.vcpus})`);
  if (source.memorySize !== destination.memorySize) mismatches.push(`memory size ${source.memorySize} (destination: ${destination.memorySize})`);
  const regions = (descriptor: MachineDescriptor): string => descriptor.ramRegions.map((region) => `${region.start}+${region.size}`).join(',');
  if (regions(source) !== regions(destination)) mismatches.push(`RAM layout [${regions(source)}] (destination: [${regions(destination)}])`);
  const devices = new Set(destination.devices);
  for (const device of source.devices) if (!devices.has(device)) mismatches.push(`device ${device} missing on the destination`);
  const features = new Set(destination.features);
  for (const feature of source.features) if (!features.has(feature)) mismatches.push(`feature ${feature} missing on the destination`);
  return mismatches;
}

/** Reads a descriptor that came over the wire, checking every field. */
export function readMachineDescriptor(value: unknown, path = 'descriptor'): MachineDescriptor {
  const reader = StateReader.of(value, path);
  const name = (field: string): string => {
    const text = reader.string(field);
    if (text.length > MAX_NAME) reader.fail(field, `longer than ${MAX_NAME} characters`);
    return text;
  };
  const names = (field: string): string[] => {
    const list = (value as Record<string, unknown>)[field];
    if (!Array.isArray(list) || list.length > MAX_LIST || !list.every((item) => typeof item === 'string' && item.length <= MAX_NAME)) {
      reader.fail(field, `expected at most ${MAX_LIST} names`);
    }
    return list as string[];
  };
  const memorySize = reader.uint('memorySize', Number.MAX_SAFE_INTEGER);
  const ramRegions = reader.children('ramRegions', MAX_LIST).map((region) => ({
    start: region.uint('start', Number.MAX_SAFE_INTEGER),
    size: region.uint('size', Number.MAX_SAFE_INTEGER),
  }));
  for (const region of ramRegions) {
    if (region.start % PAGE_SIZE !== 0 || region.size % PAGE_SIZE !== 0 || region.start + region.size > memorySize) {
      reader.fail('ramRegions', 'regions must be page-aligned and inside the memory size');
    }
  }
  return {
    machineType: name('machineType'),
    cpuModel: name('cpuModel'),
    vcpus: reader.uint('vcpus', 4096),
    memorySize,
    ramRegions,
    devices: names('devices'),
    features: names('features'),
  };
}

/** The RAM regions of a memory, found page by page with `isRam` (for descriptors). */
export function ramRegionsOf(memory: GuestMemory): { start: number; size: number }[] {
  const regions: { start: number; size: number }[] = [];
  const pages = Math.floor(memory.size / PAGE_SIZE);
  let start = -1;
  for (let page = 0; page <= pages; page++) {
    const ram = page < pages && memory.isRam((page * PAGE_SIZE) as Parameters<GuestMemory['isRam']>[0], PAGE_SIZE);
    if (ram && start < 0) start = page;
    if (!ram && start >= 0) {
      regions.push({ start: start * PAGE_SIZE, size: (page - start) * PAGE_SIZE });
      start = -1;
    }
  }
  return regions;
}

/** What a post-copy destination tells its machine about pages that have not arrived yet. */
export interface PostcopyGuard {
  /** True while `page` has not arrived: the guest must not touch it. */
  isMissing(page: number): boolean;
  /** The guest needs `page` now: fetch it first (the caller stalls until `isMissing` turns false). */
  fault(page: number): void;
}

/**
 * A machine that can run before all its memory arrived (post-copy). Between
 * `beginPostcopy` and `endPostcopy`, a vCPU about to touch a missing page
 * calls `guard.fault(page)` and stalls until the page is there.
 */
export interface PostcopyVm extends MigratableVm {
  beginPostcopy(guard: PostcopyGuard): void;
  endPostcopy(): void;
}

export function supportsPostcopy(vm: MigratableVm): vm is PostcopyVm {
  return typeof (vm as Partial<PostcopyVm>).beginPostcopy === 'function' && typeof (vm as Partial<PostcopyVm>).endPostcopy === 'function';
}
