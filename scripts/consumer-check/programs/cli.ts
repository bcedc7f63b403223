/**
 * A consumer of @tsvirt/cli (scripts/consumer-check): the `tsvirt` command npm
 * installed into node_modules/.bin boots the multiboot test kernel with its
 * console on stdout and exits with the guest's isa-debug-exit status, and
 * `tsvirt img create` makes an image qemu-img reads.
 *
 * node cli.js FIXTURES (from a directory of the consumer project)
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [fixtures] = process.argv.slice(2);
if (fixtures === undefined) throw new Error('usage: cli.js FIXTURES');
// This program is compiled to <project>/out/cli.js; npm links the command into <project>/node_modules/.bin.
const tsvirt = fileURLToPath(new URL('../node_modules/.bin/tsvirt', import.meta.url));

const run = spawnSync(tsvirt, ['run', '--kernel', path.join(fixtures, 'ticking-kernel.elf'), '--memory', '32M', '--deterministic'], { encoding: 'utf8', input: '' });
assert.equal(run.stdout, 'hello from the guest\n', run.stderr);
assert.equal(run.status, 7, run.stderr);

const created = spawnSync(tsvirt, ['img', 'create', '-f', 'qcow2', 'disk.qcow2', '16M'], { encoding: 'utf8' });
assert.equal(created.status, 0, created.stderr);
const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', 'disk.qcow2'], { encoding: 'utf8' }));
assert.deepEqual([info.format, info['virtual-size']], ['qcow2', 16 << 20]);
execFileSync('qemu-img', ['check', 'disk.qcow2'], { stdio: 'pipe' });

const usage = spawnSync(tsvirt, ['frobnicate'], { encoding: 'utf8' });
assert.equal(usage.status, 1);
assert.match(usage.stderr, /^tsvirt: unknown command 'frobnicate'/);
console.log('cli: the tsvirt command booted the kernel (status 7) and created an image qemu-img checks clean');
