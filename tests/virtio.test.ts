/**
 * virtio devices driven by Debian's stock drivers, judged from outside the
 * guest: one real-time boot of the x86-64 guest with four virtio-blk disks
 * and a virtio-rng, many checks in it, and the host's own tools (e2fsck,
 * debugfs, qemu-img, cmp) on the disks afterwards.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootWithCommands, debianGuest, KERNEL_PROBLEMS } from './support/debian-guest.js';

const guest = debianGuest('amd64');
const tools = ['mkfs.ext4', 'e2fsck', 'debugfs', 'qemu-img'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const skip = guest === undefined ? 'run `pnpm guests --arch amd64`' : tools.length > 0 ? `install ${tools.join(', ')} (scripts/install-system-deps.sh)` : undefined;
if (skip !== undefined && process.env.CI) throw new Error(`the virtio tests cannot run: ${skip}`);

const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-virtio-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => path.join(dir, name);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe.skipIf(skip !== undefined)(`virtio with Debian's stock drivers${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  it('virtio-blk: ext4 on raw and on qcow2, dd at odd offsets, blkdiscard, a read-only disk; virtio-rng feeds /dev/hwrng', async () => {
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
      ],
    });
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

    const dmesg = out('dmesg');
    expect(dmesg).toMatch(/virtio_blk virtio\d+: \[vda\] 131072 512-byte logical blocks/);
    expect(dmesg.split('\n').filter((line) => KERNEL_PROBLEMS.test(line))).toEqual([]);
  }, 30 * 60_000);
});
