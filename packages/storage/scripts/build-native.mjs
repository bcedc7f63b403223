// Builds the native addon (native/storage-native.c) with node-gyp against the
// running Node's own headers, and copies it into dist/ beside the bundle.
// The addon is Linux-only (OFD locks, SEEK_DATA, fallocate): elsewhere the
// library runs without it, as QEMU runs with locking=off.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.platform !== 'linux') {
  console.warn(`storage: no native addon on ${process.platform}; images are opened without locks or hole detection`);
  process.exit(0);
}
const args = ['rebuild', '--loglevel=warn', '--directory', join(root, 'native')];
// A Node installed with its headers (Debian's nodejs, or a prefix with include/node) needs no download.
const prefix = dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const result = spawnSync(process.execPath, [nodeGyp, ...args], { stdio: 'inherit' });
if (result.status !== 0) {
  console.error('storage: building the native addon failed (it needs python3, make, g++ and libzstd-dev)');
  process.exit(result.status ?? 1);
}
mkdirSync(join(root, 'dist'), { recursive: true });
copyFileSync(join(root, 'native', 'build', 'Release', 'storage_native.node'), join(root, 'dist', 'storage-native.node'));
