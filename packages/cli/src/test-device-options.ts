import { PciTestdev } from '@tsvirt/devices-emulated';
import type { PciDevice } from '@tsvirt/interfaces';
import type { DebugExitPlacement } from '@tsvirt/vm';

/** QEMU's test devices, as `--device` takes them (kvm-unit-tests' runner adds all three). */
export type TestDeviceSpec = { readonly driver: 'pc-testdev' } | { readonly driver: 'pci-testdev' } | ({ readonly driver: 'isa-debug-exit' } & DebugExitPlacement);

export const TEST_DEVICES = ['pc-testdev', 'pci-testdev', 'isa-debug-exit'] as const;

/** QEMU's isa-debug-exit defaults: port 0x501, two ports. */
const DEBUG_EXIT_DEFAULT: DebugExitPlacement = { iobase: 0x501, iosize: 2 };

/** A QEMU integer property: decimal, or hexadecimal with 0x. */
function integer(option: string, key: string, text: string, fail: (message: string) => Error): number {
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(text)) throw fail(`${option}: ${key}=${text} is not a number`);
  return Number(text);
}

/**
 * The test devices' properties (`values` holds what follows the name; every
 * key is taken or refused). `fail` makes the caller's option error.
 */
export function parseTestDevice(name: (typeof TEST_DEVICES)[number], values: Map<string, string>, fail: (message: string) => Error): TestDeviceSpec {
  const option = `--device ${name}`;
  let spec: TestDeviceSpec;
  if (name === 'isa-debug-exit') {
    const iobaseText = values.get('iobase');
    const iosizeText = values.get('iosize');
    values.delete('iobase');
    values.delete('iosize');
    const iobase = iobaseText === undefined ? DEBUG_EXIT_DEFAULT.iobase : integer(option, 'iobase', iobaseText, fail);
    const iosize = iosizeText === undefined ? DEBUG_EXIT_DEFAULT.iosize : integer(option, 'iosize', iosizeText, fail);
    if (iosize !== 1 && iosize !== 2 && iosize !== 4) throw fail(`${option}: iosize=${iosizeText} must be 1, 2 or 4`);
    if (iobase + iosize > 0x10000) throw fail(`${option}: iobase=${iobaseText} is past the 64 KiB port space`);
    spec = { driver: name, iobase, iosize };
  } else {
    spec = { driver: name };
  }
  const [unknown] = values.keys();
  if (unknown !== undefined) throw fail(`${option}: unknown option '${unknown}'`);
  return spec;
}

/** What the machine gets for the test devices given: pc-testdev and isa-debug-exit's place (at most one of each). */
export function machineTestDevices(devices: readonly { readonly driver: string }[], fail: (message: string) => Error): { pcTestdev: boolean; debugExit: DebugExitPlacement | undefined } {
  const count = (driver: string) => devices.filter((device) => device.driver === driver).length;
  for (const driver of ['pc-testdev', 'isa-debug-exit']) if (count(driver) > 1) throw fail(`--device ${driver}: given more than once (the machine has one)`);
  const exit = devices.find((device): device is TestDeviceSpec & { driver: 'isa-debug-exit' } => device.driver === 'isa-debug-exit');
  return { pcTestdev: count('pc-testdev') === 1, debugExit: exit === undefined ? undefined : { iobase: exit.iobase, iosize: exit.iosize } };
}

/** The PCI function for a test device spec, or undefined for the ISA ones (the machine builds those). */
export function testPciDevice(spec: TestDeviceSpec): PciDevice | undefined {
  return spec.driver === 'pci-testdev' ? new PciTestdev() : undefined;
}
