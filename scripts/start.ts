/**
 * `pnpm start`: boots the default x86-64 Debian guest to an interactive
 * busybox shell on this terminal, fetching it with the guest kit first when
 * .guests/ does not have it. Ctrl-A x quits; `poweroff -f` in the guest too.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildGuest, existingGuest } from './guests/build.js';

let guest = existingGuest('amd64');
if (guest === undefined) {
  console.log('Fetching the Debian x86-64 kernel and busybox (pnpm guests --arch amd64)…');
  guest = buildGuest('amd64');
}
const cli = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
console.log(`Booting ${guest.kernelPackage} on tsvirt (Ctrl-A x quits)…`);
const result = spawnSync(process.execPath, [cli, 'run', '--kernel', guest.kernel, '--initrd', guest.initramfs, '--append', 'console=ttyS0 quiet', '--memory', '256M'], { stdio: 'inherit' });
process.exit(result.status ?? 1);
