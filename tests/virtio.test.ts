/**
 * virtio devices driven by Debian's stock drivers, judged from outside the
 * guest: one real-time boot of the x86-64 guest with four virtio-blk disks,
 * a virtio-rng and a virtio-net on passt (user-mode networking), many checks
 * in it, and the host's own tools (e2fsck, debugfs, qemu-img, cmp) on the
 * disks afterwards, the host's own sockets on the network.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootWithCommands, debianGuest, KERNEL_PROBLEMS } from './support/debian-guest.js';

const guest = debianGuest('amd64');
const tools = ['mkfs.ext4', 'e2fsck', 'debugfs', 'qemu-img', 'passt'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const skip = guest === undefined ? 'run `pnpm guests --arch amd64`' : tools.length > 0 ? `install ${tools.join(', ')} (scripts/install-system-deps.sh)` : undefined;
if (skip !== undefined && process.env.CI) throw new Error(`the virtio tests cannot run: ${skip}`);

const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-virtio-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => path.join(dir, name);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A TCP port free on the host's loopback now (for passt's port forward). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.skipIf(skip !== undefined)(`virtio with Debian's stock drivers${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  it('virtio-blk: ext4 on raw and on qcow2, dd at odd offsets, blkdiscard, a read-only disk; virtio-rng feeds /dev/hwrng; virtio-net on passt: DHCP, wget from the host', async () => {
    // vda: an empty raw disk the guest formats. vdb: a host-made ext4 with metadata_csum, as qcow2.
    writeFileSync(at('fresh.raw'), new Uint8Array(0));
    execFileSync('truncate', ['-s', '64M', at('fresh.raw')]);
    const content = at('content');
    mkdirSync(content);
    const hostFile = randomBytes(200_000);
    writeFileSync(path.join(content, 'from-host'), hostFile);
    execFileSync('mkfs.ext4', ['-q', '-O', 'metadata_csum', '-d', content, at('ext4.raw'), '32M']);
    execFileSync('qemu-img', ['convert', '-O', 'qcow2', at('ext4.raw'), at('ext4.qcow2')]);
    // vdc: a raw disk for dd and blkdiscard. vdd: read-only.
    const scratch = randomBytes(8 << 20);
    writeFileSync(at('scratch.raw'), scratch);
    writeFileSync(at('readonly.raw'), new Uint8Array(1 << 20).fill(0x77));

    // The network: an HTTP server on the host's loopback, which the guest reaches at its gateway
    // address (passt maps it to the host). A passt port forward (hostfwd) is set up too; host →
    // guest connections through it are not checked yet: Debian 12's passt (2023-03-09) never
    // took the guest's SYN-ACK for a connection from the host's loopback (seen in passt's own
    // pcap, with the guest's frames and checksums right).
    const download = randomBytes(1 << 20);
    const forwardPort = await freePort();
    const http = createHttpServer((request, response) => {
      if (request.url === '/blob') response.end(download);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const httpPort = (http.address() as AddressInfo).port;
    const gateway = `http://$(cat /tmp/gw):${httpPort}`;
    const network = [
      // udhcpc's script: configure the lease (busybox gives $ip, $mask as a prefix length, $router).
      "printf '#!/bin/sh\\n[ $1 = bound ] && ip a add $ip/$mask dev $interface && ip r add default via $router && echo $router > /tmp/gw\\nexit 0\\n' > /tmp/d && chmod +x /tmp/d",
      'ip link set eth0 up && udhcpc -i eth0 -n -q -t 10 -s /tmp/d',
      `wget -q -O /tmp/got ${gateway}/blob && sha256sum /tmp/got`,
      'grep eth0 /proc/net/dev',
    ];

    const commands = [
      'mke2fs -q /dev/vda',
      'mkdir -p /a /b',
      'mount -t ext4 /dev/vda /a',
      'head -c 3000000 /dev/urandom > /a/random',
      'sha256sum /a/random',
      'umount /a',
      'mount -t ext4 /dev/vdb /b',
      'sha256sum /b/from-host',
      'echo written-by-guest > /b/from-guest',
      'umount /b',
      'head -c 6656 /dev/urandom > /tmp/pattern',
      'dd if=/tmp/pattern of=/dev/vdc bs=512 seek=7 conv=notrunc,fsync 2>/dev/null',
      'sha256sum /tmp/pattern',
      'blkdiscard -o 1048576 -l 1048576 /dev/vdc',
      'dd if=/dev/zero of=/dev/vdd bs=512 count=1 conv=fsync',
      'cat /sys/block/vdd/ro',
      'cat /sys/block/vdb/serial',
      'cat /sys/class/misc/hw_random/rng_current',
      'head -c 64 /dev/hwrng | wc -c',
      ...network,
      'dmesg',
    ];
    const run = await bootWithCommands(guest!, commands, {
      realTime: true,
      // Drives with if=none and a --device each, so the PCI order (and vda…vdd) is the command line's.
      args: [
        '--drive', `file=${at('fresh.raw')},format=raw,if=none,id=fresh`,
        '--device', 'virtio-blk-pci,drive=fresh',
        '--drive', `file=${at('ext4.qcow2')},format=qcow2,if=none,id=ext4`,
        '--device', 'virtio-blk-pci,drive=ext4,serial=tsvirt-ext4',
        '--drive', `file=${at('scratch.raw')},format=raw,if=none,id=scratch,discard=unmap`,
        '--device', 'virtio-blk-pci,drive=scratch',
        '--drive', `file=${at('readonly.raw')},format=raw,if=none,id=readonly,readonly=on`,
        '--device', 'virtio-blk-pci,drive=readonly',
        '--device', 'virtio-rng-pci',
        '--netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${forwardPort}-:5555`,
        '--device', 'virtio-net-pci,netdev=net0,mac=52:54:00:12:34:99',
      ],
    }).finally(() => http.close());
    const out = (command: string) => run.outputs.get(command) ?? '';
    const tail = run.serial.split('\n').slice(-80).join('\n');
    expect(run.status, tail).toBe(0);
    expect(run.serial, tail).toContain('TSVIRT-DONE');

    // vda: the guest's file, by the host's tools.
    for (const command of ['mke2fs -q /dev/vda', 'mount -t ext4 /dev/vda /a', 'umount /a']) expect(run.exitStatuses.get(command), `${command}: ${out(command)}`).toBe(0);
    const guestHash = /^([0-9a-f]{64})/.exec(out('sha256sum /a/random'))?.[1];
    expect(guestHash).toBeDefined();
    expect(spawnSync('e2fsck', ['-fn', at('fresh.raw')]).status).toBe(0);
    expect(createHash('sha256').update(execFileSync('debugfs', ['-R', 'cat /random', at('fresh.raw')], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 << 20 })).digest('hex')).toBe(guestHash);

    // vdb: the host's file read back in the guest, the guest's file found by the host, qemu-img check clean.
    expect(out('sha256sum /b/from-host')).toContain(sha256(hostFile));
    expect(run.exitStatuses.get('umount /b')).toBe(0);
    expect(out('cat /sys/block/vdb/serial').trim()).toBe('tsvirt-ext4');
    expect(spawnSync('qemu-img', ['check', at('ext4.qcow2')]).status).toBe(0);
    execFileSync('qemu-img', ['convert', '-O', 'raw', at('ext4.qcow2'), at('ext4-after.raw')]);
    expect(spawnSync('e2fsck', ['-fn', at('ext4-after.raw')]).status).toBe(0);
    expect(execFileSync('debugfs', ['-R', 'cat /from-guest', at('ext4-after.raw')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).toBe('written-by-guest\n');

    // vdc: the pattern at sector 7, the discarded megabyte reading as zeros, the rest untouched.
    const after = readFileSync(at('scratch.raw'));
    expect(after.length).toBe(scratch.length);
    expect(out('sha256sum /tmp/pattern')).toContain(sha256(after.subarray(7 * 512, 7 * 512 + 6656)));
    expect(after.subarray(1 << 20, 2 << 20).every((byte) => byte === 0)).toBe(true);
    expect(Buffer.compare(after.subarray(0, 7 * 512), scratch.subarray(0, 7 * 512))).toBe(0);
    expect(Buffer.compare(after.subarray(2 << 20), scratch.subarray(2 << 20))).toBe(0);

    // vdd: read-only to the guest, unchanged on the host.
    expect(run.exitStatuses.get('dd if=/dev/zero of=/dev/vdd bs=512 count=1 conv=fsync')).not.toBe(0);
    expect(out('cat /sys/block/vdd/ro')).toBe('1\n');
    expect(statSync(at('readonly.raw')).size).toBe(1 << 20);
    expect(readFileSync(at('readonly.raw')).every((byte) => byte === 0x77)).toBe(true);

    // virtio-rng.
    expect(out('cat /sys/class/misc/hw_random/rng_current')).toBe('virtio_rng.0\n');
    expect(out('head -c 64 /dev/hwrng | wc -c').trim()).toBe('64');

    // virtio-net: a lease from passt, the host's file fetched whole, the host's bytes received whole.
    expect(run.exitStatuses.get(network[1]!), out(network[1]!)).toBe(0);
    expect(out(network[2]!)).toContain(sha256(download));
    // /proc/net/dev: eth0: rx bytes packets errs drop … tx bytes packets errs drop.
    const counters = out(network[3]!).trim().split(/[\s:]+/).slice(1).map(Number);
    expect(counters[0]).toBeGreaterThan(download.length);
    expect(counters[8]).toBeGreaterThan(0);
    expect([counters[2], counters[3], counters[10], counters[11]]).toEqual([0, 0, 0, 0]);

    const dmesg = out('dmesg');
    expect(dmesg).toMatch(/virtio_blk virtio\d+: \[vda\] 131072 512-byte logical blocks/);
    expect(dmesg.split('\n').filter((line) => KERNEL_PROBLEMS.test(line))).toEqual([]);
  }, 30 * 60_000);
});
