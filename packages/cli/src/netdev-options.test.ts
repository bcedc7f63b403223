import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryNetworkBackend } from '@tsvirt/interfaces/testing';
import { VirtioPci } from '@tsvirt/devices-virtio';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { buildMachineDevices, DeviceOptionError, parseDevice } from './device-options.js';
import { openNetdevs, parseNetdev } from './netdev-options.js';
import { parseRunArguments } from './run-command.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-netdev-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--netdev', () => {
  it("reads QEMU's user, stream (7.2) and dgram forms", () => {
    expect(parseNetdev('user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::5353-:53')).toEqual({
      kind: 'user',
      id: 'n0',
      hostForwards: [
        { protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8080, guestPort: 80 },
        { protocol: 'udp', hostPort: 5353, guestPort: 53 },
      ],
    });
    expect(parseNetdev('stream,id=s,server=on,addr.type=inet,addr.host=0.0.0.0,addr.port=5555')).toEqual({ kind: 'stream', id: 's', server: true, address: { type: 'inet', host: '0.0.0.0', port: 5555 }, reconnectSeconds: 0 });
    expect(parseNetdev('stream,id=s,server=off,addr.type=unix,addr.path=/run/a,,b.sock,reconnect=2')).toEqual({ kind: 'stream', id: 's', server: false, address: { type: 'unix', path: '/run/a,b.sock' }, reconnectSeconds: 2 });
    expect(parseNetdev('dgram,id=d,local.type=inet,local.host=127.0.0.1,local.port=10001,remote.type=inet,remote.host=127.0.0.1,remote.port=10002')).toEqual({
      kind: 'dgram',
      id: 'd',
      local: { host: '127.0.0.1', port: 10001 },
      remote: { host: '127.0.0.1', port: 10002 },
    });
    expect(parseRunArguments(['--kernel', 'k', '--netdev=user,id=n', '--device', 'virtio-net-pci,netdev=n,mac=52:54:00:aa:bb:cc']).netdevs).toEqual([{ kind: 'user', id: 'n', hostForwards: [] }]);
  });

  it('refuses bad options with one line naming them', () => {
    for (const [text, message] of [
      ['tap,id=t', "--netdev: 'tap' is not a network back end tsvirt has (known: user, stream, dgram)"],
      ['user', '--netdev user: id=ID is required'],
      ['user,id=n,restrict=on', "--netdev user: unknown option 'restrict'"],
      ['user,id=n,hostfwd=tcp::80', '--netdev user: hostfwd=tcp::80 is not tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT'],
      ['user,id=n,hostfwd=tcp::80-10.0.2.15:80', "the guest address cannot be chosen"],
      ['user,id=n,hostfwd=tcp::0-:80', 'port 0 is not 1 to 65535'],
      ['stream,id=s,server=maybe,addr.type=inet,addr.host=h,addr.port=1', '--netdev stream: server=maybe is not on or off'],
      ['stream,id=s,addr.type=inet,addr.host=h', '--netdev stream: addr.port=PORT is required'],
      ['stream,id=s,addr.type=inet,addr.host=h,addr.port=70000', '--netdev stream: addr.port=70000 is not a port (0 to 65535)'],
      ['stream,id=s,addr.type=vsock', '--netdev stream: addr.type=vsock is not inet or unix'],
      ['stream,id=s,addr.type=inet,addr.host=h,addr.port=1,hostfwd=tcp::1-:1', '--netdev stream: hostfwd is for --netdev user'],
      ['dgram,id=d,local.type=unix,local.path=/x', '--netdev dgram: local.type=unix is not inet'],
    ] as const) {
      expect(() => parseNetdev(text), text).toThrow(DeviceOptionError);
      expect(() => parseNetdev(text), text).toThrow(message);
    }
    expect(() => parseDevice('virtio-net-pci')).toThrow('--device virtio-net-pci: netdev=ID is required');
    expect(() => parseDevice('virtio-net-pci,netdev=n,mac=01:00:5e:00:00:01')).toThrow('mac=01:00:5e:00:00:01 is not a unicast MAC address');
    expect(() => parseDevice('virtio-net-pci,netdev=n,mac=52:54:00')).toThrow('is not a unicast MAC address');
    expect(() => parseDevice('virtio-net-pci,netdev=n,vectors=3')).toThrow("--device virtio-net-pci: unknown option 'vectors'");
  });

  it('pairs each NIC with one back end, with QEMU’s MACs by default', () => {
    const netdevs = new Map([
      ['a', new MemoryNetworkBackend()],
      ['b', new MemoryNetworkBackend()],
    ]);
    const devices = buildMachineDevices([], [parseDevice('virtio-net-pci,netdev=a'), parseDevice('virtio-net-pci,netdev=b,mac=52:54:00:aa:bb:cc')], { backends: new Map(), netdevs }).pci;
    const macs = devices.map((device) => Array.from({ length: 6 }, (_, i) => (device as VirtioPci).bars[4]!.device.read(0x2000 + i, 1).toString(16).padStart(2, '0')).join(':'));
    expect(macs).toEqual(['52:54:00:12:34:56', '52:54:00:aa:bb:cc']);
    expect(() => buildMachineDevices([], [parseDevice('virtio-net-pci,netdev=x')], { backends: new Map(), netdevs }).pci).toThrow("no --netdev with id 'x'");
    expect(() => buildMachineDevices([], [parseDevice('virtio-net-pci,netdev=a'), parseDevice('virtio-net-pci,netdev=a')], { backends: new Map(), netdevs }).pci).toThrow("netdev 'a' is already in use");
    expect(() => buildMachineDevices([], [parseDevice('virtio-net-pci,netdev=a')], { backends: new Map(), netdevs }).pci).toThrow('--netdev b: no --device virtio-net-pci,netdev=b uses it');
  });

  it('opens the back ends before the guest runs, and says why one cannot be opened', async () => {
    const listening = await openNetdevs([parseNetdev('stream,id=s,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=0')]);
    expect([...listening.keys()]).toEqual(['s']);
    await listening.get('s')!.close();
    const spare = createServer();
    await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
    const port = (spare.address() as { port: number }).port;
    await new Promise<void>((resolve) => spare.close(() => resolve()));
    await expect(openNetdevs([parseNetdev(`stream,id=s,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=${port}`)])).rejects.toThrow(/^--netdev stream,id=s: connect ECONNREFUSED/);
    await expect(openNetdevs([parseNetdev('dgram,id=d,local.type=inet,local.host=127.0.0.1,local.port=0,remote.type=inet,remote.host=127.0.0.1,remote.port=9'), parseNetdev('user,id=d')])).rejects.toThrow("--netdev: id 'd' is used twice");
  });

  it('tsvirt run refuses a netdev without a NIC and a NIC without its netdev, in one line, before the guest runs', async () => {
    const kernel = path.join(dir, 'not-booted');
    writeFileSync(kernel, 'x');
    for (const [extra, message] of [
      [['--netdev', 'stream,id=s,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=0'], /--netdev s: no --device virtio-net-pci,netdev=s uses it/],
      [['--device', 'virtio-net-pci,netdev=nothing'], /no --netdev with id 'nothing'/],
      [['--netdev', 'bogus,id=b'], /'bogus' is not a network back end/],
    ] as const) {
      let stderr = '';
      const status = await runCli(['run', '--kernel', kernel, '--memory', '64M', ...extra], { stdout: () => {}, stderr: (text) => (stderr += text) });
      expect(status, extra.join(' ')).toBe(2);
      expect(stderr, extra.join(' ')).toMatch(message);
      expect(stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it.skipIf(spawnSync('sh', ['-c', 'command -v passt']).status !== 0)('starts passt for --netdev user and stops it when closed', async () => {
    const opened = await openNetdevs([parseNetdev('user,id=n')]);
    await opened.get('n')!.close();
  });
});
