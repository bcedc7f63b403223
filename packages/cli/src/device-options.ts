import { type BlockBackend, canDiscard, type PciDevice } from '@tsvirt/interfaces';
import { VirtioBlk, VirtioPci, VirtioRng } from '@tsvirt/devices-virtio';

/** A bad `--drive` or `--device`: the message is the whole one-line explanation. */
export class DeviceOptionError extends Error {}

/** `--drive`: QEMU's -drive sub-options that tsvirt takes. */
export interface DriveSpec {
  readonly id: string;
  readonly file: string;
  readonly format: 'raw' | 'qcow2' | undefined;
  /** `virtio` makes a virtio-blk device of it; `none` leaves it for a `--device`. */
  readonly interface: 'virtio' | 'none';
  readonly readOnly: boolean;
  /** `unsafe` ignores the guest's flushes; the others flush as asked (the host's page cache stays in use). */
  readonly cache: 'writeback' | 'writethrough' | 'none' | 'directsync' | 'unsafe';
  /** `ignore` hides discard and write-zeroes-with-unmap from the guest. */
  readonly discard: 'ignore' | 'unmap';
}

/** `--device`: the devices tsvirt can plug, with their properties. */
export type DeviceSpec = { readonly driver: 'virtio-blk-pci'; readonly drive: string; readonly serial: string | undefined } | { readonly driver: 'virtio-rng-pci' };

const DEVICES = ['virtio-blk-pci', 'virtio-rng-pci'] as const;

/**
 * QEMU's sub-option syntax: `a=1,b=2`, with `,,` for a comma inside a value.
 * With `firstIsName` the first item may be a bare word (`virtio-blk-pci,drive=d0`).
 */
export function parseSubOptions(text: string, option: string, firstIsName = false): { name: string | undefined; values: Map<string, string> } {
  const items: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ',' && text[i + 1] === ',') {
      current += ',';
      i++;
    } else if (text[i] === ',') {
      items.push(current);
      current = '';
    } else {
      current += text[i];
    }
  }
  items.push(current);
  const values = new Map<string, string>();
  let name: string | undefined;
  items.forEach((item, index) => {
    const equals = item.indexOf('=');
    if (equals < 0) {
      if (firstIsName && index === 0 && item !== '') name = item;
      else throw new DeviceOptionError(`${option}: '${item}' is not key=value`);
      return;
    }
    const key = item.slice(0, equals);
    if (values.has(key)) throw new DeviceOptionError(`${option}: '${key}' is given twice`);
    values.set(key, item.slice(equals + 1));
  });
  return { name, values };
}

function take(values: Map<string, string>, key: string): string | undefined {
  const value = values.get(key);
  values.delete(key);
  return value;
}

function choice<T extends string>(option: string, key: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new DeviceOptionError(`${option}: ${key}=${value} is not one of ${allowed.join(', ')}`);
  return value as T;
}

function onOff(option: string, key: string, value: string | undefined): boolean {
  return choice(option, key, value, ['on', 'off'], 'off') === 'on';
}

function rejectRest(option: string, values: Map<string, string>): void {
  const [unknown] = values.keys();
  if (unknown !== undefined) throw new DeviceOptionError(`${option}: unknown option '${unknown}'`);
}

export function parseDrive(text: string, index: number): DriveSpec {
  const { values } = parseSubOptions(text, '--drive');
  const file = take(values, 'file');
  if (file === undefined || file === '') throw new DeviceOptionError("--drive: 'file' is required");
  const iface = take(values, 'if');
  if (iface === undefined || iface === 'ide') throw new DeviceOptionError(`--drive ${file}: if=${iface ?? 'ide'} (QEMU's default) needs an IDE controller, which tsvirt does not have yet; use if=virtio, or if=none with --device virtio-blk-pci`);
  const format = take(values, 'format');
  const spec: DriveSpec = {
    id: take(values, 'id') ?? `drive${index}`,
    file,
    // Probed from the file when not given, as QEMU does (with its warning about raw).
    format: format === undefined ? undefined : choice<'raw' | 'qcow2'>('--drive', 'format', format, ['raw', 'qcow2'], 'raw'),
    interface: choice('--drive', 'if', iface, ['virtio', 'none'], 'virtio'),
    readOnly: onOff('--drive', 'readonly', take(values, 'readonly')),
    cache: choice('--drive', 'cache', take(values, 'cache'), ['writeback', 'writethrough', 'none', 'directsync', 'unsafe'], 'writeback'),
    // QEMU's spellings: ignore/off, unmap/on.
    discard: ['unmap', 'on'].includes(choice('--drive', 'discard', take(values, 'discard'), ['ignore', 'off', 'unmap', 'on'], 'ignore')) ? 'unmap' : 'ignore',
  };
  rejectRest('--drive', values);
  return spec;
}

export function parseDevice(text: string): DeviceSpec {
  const { name, values } = parseSubOptions(text, '--device', true);
  if (name === undefined) throw new DeviceOptionError('--device: the first item must be the device name');
  switch (name) {
    case 'virtio-blk-pci': {
      const drive = take(values, 'drive');
      if (drive === undefined) throw new DeviceOptionError('--device virtio-blk-pci: drive=ID is required');
      const serial = take(values, 'serial');
      if (serial !== undefined && new TextEncoder().encode(serial).length > 20) throw new DeviceOptionError('--device virtio-blk-pci: serial is at most 20 bytes');
      rejectRest('--device virtio-blk-pci', values);
      return { driver: name, drive, serial };
    }
    case 'virtio-rng-pci':
      rejectRest('--device virtio-rng-pci', values);
      return { driver: name };
    default:
      throw new DeviceOptionError(`--device: '${name}' is not a device tsvirt has (known: ${DEVICES.join(', ')})`);
  }
}

/** What the drives' backends become for the guest: cache and discard modes applied. */
function presentedBackend(backend: BlockBackend, drive: DriveSpec): BlockBackend {
  if (drive.cache !== 'unsafe' && (drive.discard === 'unmap' || !canDiscard(backend))) return backend;
  // A view with what the options take away: flushes (cache=unsafe) and discard (discard=ignore).
  const view: BlockBackend = {
    get size() {
      return backend.size;
    },
    get readOnly() {
      return backend.readOnly;
    },
    readAt: (offset, into) => backend.readAt(offset, into),
    writeAt: (offset, from) => backend.writeAt(offset, from),
    flush: drive.cache === 'unsafe' ? async () => {} : () => backend.flush(),
    close: () => backend.close(),
  };
  return view;
}

/**
 * The PCI devices for the drives and devices given, in QEMU's order: every
 * `--device` as given, then a virtio-blk for every `if=virtio` drive (QEMU
 * turns those into devices after the command line's). Each `if=none` drive
 * is used by exactly one `--device`.
 */
export function buildDevices(drives: readonly DriveSpec[], devices: readonly DeviceSpec[], backends: ReadonlyMap<string, BlockBackend>): PciDevice[] {
  const ids = new Set<string>();
  for (const drive of drives) {
    if (ids.has(drive.id)) throw new DeviceOptionError(`--drive: id '${drive.id}' is used twice`);
    ids.add(drive.id);
  }
  const used = new Set(drives.filter((drive) => drive.interface === 'virtio').map((drive) => drive.id));
  const result: PciDevice[] = [];
  for (const device of devices) {
    if (device.driver === 'virtio-rng-pci') {
      result.push(new VirtioPci(new VirtioRng()));
      continue;
    }
    const drive = drives.find((candidate) => candidate.id === device.drive);
    if (drive === undefined) throw new DeviceOptionError(`--device virtio-blk-pci: no --drive with id '${device.drive}'`);
    if (used.has(drive.id)) throw new DeviceOptionError(`--device virtio-blk-pci: drive '${drive.id}' is already in use`);
    used.add(drive.id);
    result.push(new VirtioPci(new VirtioBlk({ backend: presentedBackend(backends.get(drive.id)!, drive), readOnly: drive.readOnly, ...(device.serial === undefined ? {} : { serial: device.serial }) })));
  }
  for (const drive of drives) {
    if (drive.interface === 'virtio') result.push(new VirtioPci(new VirtioBlk({ backend: presentedBackend(backends.get(drive.id)!, drive), readOnly: drive.readOnly })));
  }
  const unused = drives.find((drive) => !used.has(drive.id));
  if (unused !== undefined) throw new DeviceOptionError(`--drive ${unused.file}: if=none, but no --device uses drive '${unused.id}'`);
  return result;
}
