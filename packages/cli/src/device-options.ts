import { type BlockBackend, canDiscard, type CharacterBackend, type NetworkBackend, parseMacAddress, type PciDevice } from '@tsvirt/interfaces';
import { VirtioBalloon, VirtioBlk, VirtioConsole, type VirtioConsolePort, type VirtioDevice, VirtioMmio, VirtioNet, VirtioPci, VirtioRng } from '@tsvirt/devices-virtio';
import { parseTestDevice, TEST_DEVICES, testPciDevice, type TestDeviceSpec } from './test-device-options.js';

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
export type DeviceSpec =
  | { readonly driver: 'virtio-blk-pci'; readonly drive: string; readonly serial: string | undefined }
  | { readonly driver: 'virtio-rng-pci' }
  | { readonly driver: 'virtio-net-pci'; readonly netdev: string; readonly mac: Uint8Array | undefined }
  /** The same on the virtio-mmio transport (QEMU's `-device` names for it). */
  | { readonly driver: 'virtio-blk-device'; readonly drive: string; readonly serial: string | undefined }
  | { readonly driver: 'virtio-rng-device' }
  | { readonly driver: 'virtio-balloon-pci' | 'virtio-balloon-device'; readonly deflateOnOom: boolean; readonly freePageReporting: boolean }
  /** The virtio-serial bus, and ports on it: `virtconsole` (Linux's hvc0) and named `virtserialport`s, each on a `--chardev`. */
  | { readonly driver: 'virtio-serial-pci' }
  | { readonly driver: 'virtconsole' | 'virtserialport'; readonly chardev: string; readonly name: string | undefined }
  | { readonly driver: 'i6300esb' | 'ib700' }
  | TestDeviceSpec;

const DEVICES = [
  'virtio-blk-pci', 'virtio-net-pci', 'virtio-rng-pci', 'virtio-balloon-pci', 'virtio-serial-pci', 'virtconsole', 'virtserialport',
  'virtio-blk-device', 'virtio-rng-device', 'virtio-balloon-device', 'i6300esb', 'ib700', ...TEST_DEVICES,
] as const;

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

export function take(values: Map<string, string>, key: string): string | undefined {
  const value = values.get(key);
  values.delete(key);
  return value;
}

export function choice<T extends string>(option: string, key: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new DeviceOptionError(`${option}: ${key}=${value} is not one of ${allowed.join(', ')}`);
  return value as T;
}

export function onOff(option: string, key: string, value: string | undefined): boolean {
  return choice(option, key, value, ['on', 'off'], 'off') === 'on';
}

export function rejectRest(option: string, values: Map<string, string>): void {
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
  const option = `--device ${name}`;
  switch (name) {
    case 'virtio-blk-pci':
    case 'virtio-blk-device': {
      const drive = take(values, 'drive');
      if (drive === undefined) throw new DeviceOptionError(`${option}: drive=ID is required`);
      const serial = take(values, 'serial');
      if (serial !== undefined && new TextEncoder().encode(serial).length > 20) throw new DeviceOptionError(`${option}: serial is at most 20 bytes`);
      rejectRest(option, values);
      return { driver: name, drive, serial };
    }
    case 'virtio-rng-pci':
    case 'virtio-rng-device':
    case 'virtio-serial-pci':
    case 'i6300esb':
    case 'ib700':
      rejectRest(option, values);
      return { driver: name };
    case 'virtio-balloon-pci':
    case 'virtio-balloon-device': {
      const deflateOnOom = onOff(option, 'deflate-on-oom', take(values, 'deflate-on-oom'));
      const freePageReporting = onOff(option, 'free-page-reporting', take(values, 'free-page-reporting'));
      rejectRest(option, values);
      return { driver: name, deflateOnOom, freePageReporting };
    }
    case 'virtconsole':
    case 'virtserialport': {
      const chardev = take(values, 'chardev');
      if (chardev === undefined) throw new DeviceOptionError(`${option}: chardev=ID is required`);
      const portName = take(values, 'name');
      rejectRest(option, values);
      return { driver: name, chardev, name: portName };
    }
    case 'virtio-net-pci': {
      const netdev = take(values, 'netdev');
      if (netdev === undefined) throw new DeviceOptionError('--device virtio-net-pci: netdev=ID is required');
      const text = take(values, 'mac');
      const mac = text === undefined ? undefined : parseMacAddress(text);
      if (text !== undefined && (mac === undefined || (mac[0]! & 1) !== 0)) throw new DeviceOptionError(`--device virtio-net-pci: mac=${text} is not a unicast MAC address (52:54:00:12:34:56)`);
      rejectRest('--device virtio-net-pci', values);
      return { driver: name, netdev, mac };
    }
    case 'pc-testdev':
    case 'pci-testdev':
    case 'isa-debug-exit':
      return parseTestDevice(name, values, (message) => new DeviceOptionError(message));
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

/** What the command line's devices become for one boot. */
export interface MachineDevices {
  /** In QEMU's order: every `--device` as given, then a virtio-blk per `if=virtio` drive. */
  readonly pci: PciDevice[];
  /** virtio-mmio transports (`virtio-*-device`), in order. */
  readonly mmio: VirtioMmio[];
  readonly watchdog: 'i6300esb' | 'ib700' | undefined;
  /** The balloon, for QMP's `balloon` and `query-balloon`. */
  readonly balloon: VirtioBalloon | undefined;
}

/** What devices take from outside themselves: the opened back ends, and the guest's RAM for the balloon. */
export interface DeviceResources {
  readonly backends: ReadonlyMap<string, BlockBackend>;
  readonly netdevs?: ReadonlyMap<string, NetworkBackend>;
  readonly chardevs?: ReadonlyMap<string, CharacterBackend>;
  readonly memoryBytes?: number;
  /** The balloon's size changed (QMP's BALLOON_CHANGE). */
  readonly onBalloonChange?: (actualBytes: number) => void;
}

/**
 * The devices for the drives and devices given, built fresh for each boot
 * on the same back ends. Each `if=none` drive, `--netdev` and `--chardev`
 * is used by exactly one device; the virtio-serial ports go on the one
 * `virtio-serial-pci`, consoles first; one balloon and one watchdog at most.
 */
export function buildMachineDevices(drives: readonly DriveSpec[], devices: readonly DeviceSpec[], resources: DeviceResources): MachineDevices {
  const ids = new Set<string>();
  for (const drive of drives) {
    if (ids.has(drive.id)) throw new DeviceOptionError(`--drive: id '${drive.id}' is used twice`);
    ids.add(drive.id);
  }
  const netdevs = resources.netdevs ?? new Map<string, NetworkBackend>();
  const used = new Set(drives.filter((drive) => drive.interface === 'virtio').map((drive) => drive.id));
  const usedNetdevs: string[] = [];
  const pci: PciDevice[] = [];
  const mmio: VirtioMmio[] = [];
  const place = (device: VirtioDevice, driver: string): void => {
    if (driver.endsWith('-device')) mmio.push(new VirtioMmio(device));
    else pci.push(new VirtioPci(device));
  };
  const disk = (drive: DriveSpec, serial?: string) => new VirtioBlk({ backend: presentedBackend(resources.backends.get(drive.id)!, drive), readOnly: drive.readOnly, ...(serial === undefined ? {} : { serial }) });
  let balloon: VirtioBalloon | undefined;
  let watchdog: 'i6300esb' | 'ib700' | undefined;
  const serialBus = serialPorts(devices, resources.chardevs ?? new Map());
  for (const device of devices) {
    switch (device.driver) {
      case 'pc-testdev':
      case 'pci-testdev':
      case 'isa-debug-exit': {
        const testDevice = testPciDevice(device);
        if (testDevice !== undefined) pci.push(testDevice);
        break;
      }
      case 'virtio-rng-pci':
      case 'virtio-rng-device':
        place(new VirtioRng(), device.driver);
        break;
      case 'virtio-net-pci':
        pci.push(networkDevice(device, netdevs, usedNetdevs));
        break;
      case 'virtio-balloon-pci':
      case 'virtio-balloon-device':
        if (balloon !== undefined) throw new DeviceOptionError(`--device ${device.driver}: only one balloon device is supported`);
        if (resources.memoryBytes === undefined) throw new DeviceOptionError(`--device ${device.driver}: the balloon needs the guest's memory size`);
        balloon = new VirtioBalloon({ ramBytes: resources.memoryBytes, deflateOnOom: device.deflateOnOom, freePageReporting: device.freePageReporting, onChange: resources.onBalloonChange });
        place(balloon, device.driver);
        break;
      case 'virtio-serial-pci':
        pci.push(new VirtioPci(new VirtioConsole({ ports: serialBus })));
        break;
      case 'virtconsole':
      case 'virtserialport':
        break;
      case 'i6300esb':
      case 'ib700':
        if (watchdog !== undefined) throw new DeviceOptionError(`--device ${device.driver}: the machine has a watchdog already (${watchdog})`);
        watchdog = device.driver;
        break;
      case 'virtio-blk-pci':
      case 'virtio-blk-device': {
        const drive = drives.find((candidate) => candidate.id === device.drive);
        if (drive === undefined) throw new DeviceOptionError(`--device ${device.driver}: no --drive with id '${device.drive}'`);
        if (used.has(drive.id)) throw new DeviceOptionError(`--device ${device.driver}: drive '${drive.id}' is already in use`);
        used.add(drive.id);
        place(disk(drive, device.serial), device.driver);
        break;
      }
    }
  }
  for (const drive of drives) {
    if (drive.interface === 'virtio') pci.push(new VirtioPci(disk(drive)));
  }
  const unused = drives.find((drive) => !used.has(drive.id));
  if (unused !== undefined) throw new DeviceOptionError(`--drive ${unused.file}: if=none, but no --device uses drive '${unused.id}'`);
  const idle = [...netdevs.keys()].find((id) => !usedNetdevs.includes(id));
  if (idle !== undefined) throw new DeviceOptionError(`--netdev ${idle}: no --device virtio-net-pci,netdev=${idle} uses it`);
  return { pci, mmio, watchdog, balloon };
}


/**
 * The virtio-serial ports on their chardevs, consoles first (Linux makes the
 * first console port hvc0). Checked as QEMU does: ports need the bus, and a
 * chardev serves one port.
 */
function serialPorts(devices: readonly DeviceSpec[], chardevs: ReadonlyMap<string, CharacterBackend>): VirtioConsolePort[] {
  const buses = devices.filter((device) => device.driver === 'virtio-serial-pci').length;
  const ports = devices.filter((device): device is Extract<DeviceSpec, { driver: 'virtconsole' | 'virtserialport' }> => device.driver === 'virtconsole' || device.driver === 'virtserialport');
  if (buses > 1) throw new DeviceOptionError('--device virtio-serial-pci: given more than once (tsvirt has one virtio-serial bus)');
  const usedChardevs = new Set<string>();
  const result = ports.map((port) => {
    if (buses === 0) throw new DeviceOptionError(`--device ${port.driver}: No 'virtio-serial-bus' bus found (add --device virtio-serial-pci)`);
    const backend = chardevs.get(port.chardev);
    if (backend === undefined) throw new DeviceOptionError(`--device ${port.driver}: no --chardev with id '${port.chardev}'`);
    if (usedChardevs.has(port.chardev)) throw new DeviceOptionError(`--device ${port.driver}: chardev '${port.chardev}' is already in use`);
    usedChardevs.add(port.chardev);
    return { backend, console: port.driver === 'virtconsole', ...(port.name === undefined ? {} : { name: port.name }) };
  });
  if (result.length > 31) throw new DeviceOptionError('--device virtserialport: at most 31 ports on the virtio-serial bus');
  if (result.filter((port) => port.console).length > 1) throw new DeviceOptionError('--device virtconsole: tsvirt has one console port (hvc0) per bus');
  return [...result.filter((port) => port.console), ...result.filter((port) => !port.console)];
}

/** A virtio-net on its back end; without mac=, QEMU's 52:54:00:12:34:56 for the first NIC, …:57 for the second. */
function networkDevice(device: Extract<DeviceSpec, { driver: 'virtio-net-pci' }>, netdevs: ReadonlyMap<string, NetworkBackend>, used: string[]): PciDevice {
  const backend = netdevs.get(device.netdev);
  if (backend === undefined) throw new DeviceOptionError(`--device virtio-net-pci: no --netdev with id '${device.netdev}'`);
  if (used.includes(device.netdev)) throw new DeviceOptionError(`--device virtio-net-pci: netdev '${device.netdev}' is already in use`);
  const mac = device.mac ?? Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56 + used.length);
  used.push(device.netdev);
  return new VirtioPci(new VirtioNet({ backend, mac }));
}
