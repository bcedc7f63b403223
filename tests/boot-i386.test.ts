import { describe, expect, it } from 'vitest';
import { expectHealthyBoot } from './support/boot-assertions.js';
import { bootWithCommands, debianGuest, SHELL_COMMANDS } from './support/debian-guest.js';

const guest = debianGuest('i386');
const hint = guest === undefined ? ' (skipped: run `pnpm guests --arch i386` to fetch the Debian i386 kernel and busybox)' : '';
const BOOT_TIMEOUT = 30 * 60_000;

describe.skipIf(guest === undefined)(`Debian i386 (linux-image-686) on the pc machine${hint}`, () => {
  it('boots to the shell, runs the commands and powers off, twice with the same serial output byte for byte in deterministic mode', async () => {
    // The fullest CPU model here (SSE4.2, XSAVE, BMI); the x86-64 test boots the default qemu64.
    const first = await bootWithCommands(guest!, SHELL_COMMANDS, { cpuModel: 'tsvirt-max' });
    expectHealthyBoot(first, guest!, 'i686', 'tsvirt-max');
    const second = await bootWithCommands(guest!, SHELL_COMMANDS, { cpuModel: 'tsvirt-max' });
    expect(second.serial.length).toBe(first.serial.length);
    expect(second.serial === first.serial).toBe(true);
  }, BOOT_TIMEOUT);
});
