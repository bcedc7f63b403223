import { describe, it } from 'vitest';
import { expectHealthyBoot } from './support/boot-assertions.js';
import { bootWithCommands, debianGuest, SHELL_COMMANDS } from './support/debian-guest.js';

const guest = debianGuest('amd64');
const hint = guest === undefined ? ' (skipped: run `pnpm guests --arch amd64` to fetch the Debian amd64 kernel and busybox)' : '';

describe.skipIf(guest === undefined)(`Debian x86-64 (linux-image-amd64) on the pc machine${hint}`, () => {
  it('boots to the shell on the default CPU model (qemu64), runs the commands and powers off', async () => {
    expectHealthyBoot(await bootWithCommands(guest!, SHELL_COMMANDS), guest!, 'x86_64', 'qemu64');
  }, 30 * 60_000);
});
