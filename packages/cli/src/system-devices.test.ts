import { MemoryBlockBackend, MemoryCharacterBackend } from '@tsvirt/interfaces/testing';
import { VirtioBalloon, VirtioConsole, VirtioMmio, VirtioPci } from '@tsvirt/devices-virtio';
import { describe, expect, it } from 'vitest';
import { parseChardev } from './chardev-options.js';
import { buildMachineDevices, parseDevice, parseDrive } from './device-options.js';
import { parseRunArguments, UsageError } from './run-command.js';

const MiB = 1 << 20;

describe('--device for the virtio-mmio transport, the balloon, virtio-serial and the watchdogs', () => {
  it('builds MMIO and PCI devices in the order given, one balloon, and the watchdog for the machine', () => {
    const drives = [parseDrive('file=a.img,if=none,id=d0', 0)];
    const devices = ['virtio-rng-device', 'virtio-blk-device,drive=d0,serial=abc', 'virtio-balloon-pci,free-page-reporting=on', 'i6300esb'].map(parseDevice);
    const built = buildMachineDevices(drives, devices, { backends: new Map([['d0', new MemoryBlockBackend(MiB)]]), memoryBytes: 64 * MiB });
    expect(built.mmio.map((device) => device.device.constructor.name)).toEqual(['VirtioRng', 'VirtioBlk']);
    expect(built.pci).toHaveLength(1);
    expect((built.pci[0] as VirtioPci).device).toBe(built.balloon);
    expect(built.balloon).toBeInstanceOf(VirtioBalloon);
    expect(built.watchdog).toBe('i6300esb');
    expect(built.mmio[0]).toBeInstanceOf(VirtioMmio);
  });

  it('puts virtio-serial ports on the bus, the console first, each on its chardev', () => {
    const chardevs = new Map([
      ['c0', new MemoryCharacterBackend()],
      ['c1', new MemoryCharacterBackend()],
    ]);
    const devices = ['virtio-serial-pci', 'virtserialport,chardev=c1,name=org.tsvirt.data', 'virtconsole,chardev=c0'].map(parseDevice);
    const built = buildMachineDevices([], devices, { backends: new Map(), chardevs });
    const console = (built.pci[0] as VirtioPci).device as VirtioConsole;
    expect(console).toBeInstanceOf(VirtioConsole);
    // Port 0 is the console (hvc0): what the guest writes there reaches c0.
    expect(console.readConfig(4, 4)).toBe(31);
  });

  it('refuses what QEMU refuses, in one line', () => {
    const chardevs = new Map([['c0', new MemoryCharacterBackend()]]);
    const build = (...texts: string[]) => () => buildMachineDevices([], texts.map(parseDevice), { backends: new Map(), chardevs, memoryBytes: 64 * MiB });
    expect(build('virtconsole,chardev=c0')).toThrow("--device virtconsole: No 'virtio-serial-bus' bus found (add --device virtio-serial-pci)");
    expect(build('virtio-serial-pci', 'virtconsole,chardev=nope')).toThrow("--device virtconsole: no --chardev with id 'nope'");
    expect(build('virtio-serial-pci', 'virtconsole,chardev=c0', 'virtserialport,chardev=c0')).toThrow("chardev 'c0' is already in use");
    expect(build('virtio-balloon-pci', 'virtio-balloon-device')).toThrow('only one balloon device is supported');
    expect(build('ib700', 'i6300esb')).toThrow('the machine has a watchdog already (ib700)');
    expect(() => parseDevice('virtconsole')).toThrow('--device virtconsole: chardev=ID is required');
    expect(() => parseDevice('virtio-balloon-pci,deflate-on-oom=maybe')).toThrow('deflate-on-oom=maybe is not one of on, off');
    expect(() => parseDevice('ib700,iobase=1')).toThrow("--device ib700: unknown option 'iobase'");
  });
});

describe('--chardev and --watchdog-action', () => {
  it("reads QEMU's null, file and TCP socket forms", () => {
    expect(parseChardev('null,id=n')).toEqual({ id: 'n', backend: 'null' });
    expect(parseChardev('file,id=f,path=/tmp/a,,b')).toEqual({ id: 'f', backend: 'file', path: '/tmp/a,b' });
    expect(parseChardev('socket,id=s,port=4555,server=on,wait=off')).toEqual({ id: 's', backend: 'socket', host: '127.0.0.1', port: 4555, server: true });
    expect(parseChardev('socket,id=s,host=10.0.0.1,port=7')).toEqual({ id: 's', backend: 'socket', host: '10.0.0.1', port: 7, server: false });
  });

  it('refuses what it cannot do, naming the problem', () => {
    expect(() => parseChardev('pty,id=p')).toThrow("'pty' is not a back end tsvirt has (known: null, file, socket)");
    expect(() => parseChardev('file,path=x')).toThrow('--chardev file: id=ID is required');
    expect(() => parseChardev('socket,id=s,port=4555,server=on')).toThrow('wait=on is not supported');
    expect(() => parseChardev('socket,id=s,port=99999')).toThrow('port=99999 is not a TCP port');
    expect(() => parseChardev('socket,id=s,path=/run/x')).toThrow('Unix sockets (path=) are not supported yet');
    expect(() => parseChardev('null,id=n,x=1')).toThrow("unknown option 'x'");
  });

  it('takes the watchdog actions QEMU has', () => {
    expect(parseRunArguments(['--kernel', 'k', '--watchdog-action', 'poweroff']).watchdogAction).toBe('poweroff');
    expect(() => parseRunArguments(['--kernel', 'k', '--watchdog-action', 'explode'])).toThrow(UsageError);
  });
});
