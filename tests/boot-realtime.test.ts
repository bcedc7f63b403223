/**
 * Users run real time: the guest's clocks follow the host's, and the host is
 * often busy. Both Debian kernels boot here in real-time mode while every
 * host core spins in a process this file starts, survive the VM process being
 * stopped for 5 s, and keep the wall clock. The x86-64 guest is offered
 * kvm-clock (the default CPU model has it), the i386 guest is not.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuestManifest } from '../scripts/guests/build.js';
import { debianGuest, KERNEL_PROBLEMS } from './support/debian-guest.js';
import { GuestSession, HostLoad, parseAdjtimexTime } from './support/guest-session.js';

const amd64 = debianGuest('amd64');
const i386 = debianGuest('i386');
const hint = amd64 === undefined || i386 === undefined ? ' (skipped: run `pnpm guests --arch all` to fetch the Debian kernels and busybox)' : '';
const TIMEOUT = 40 * 60_000;
const STALL_MS = 5_000;

async function bootBusyHostStallAndCheck(manifest: GuestManifest, cpu: string, clocksources: readonly string[]): Promise<void> {
  const session = GuestSession.start(manifest, { cpu });
  try {
    await session.shell(TIMEOUT);
    expect(session.console).toContain(`TSVIRT-READY ${manifest.kernelVersion}`);

    const clocksource = await session.run('cat /sys/devices/system/clocksource/clocksource0/current_clocksource');
    expect(clocksources, `current clocksource: ${clocksource.output}`).toContain(clocksource.output.trim());

    // The host stops the VM process (descheduled, suspended, SIGSTOP) and lets it go on.
    await session.stall(STALL_MS);
    const before = Date.now() / 1000;
    const time = await session.run('adjtimex');
    const after = Date.now() / 1000;
    const guestTime = parseAdjtimexTime(time.output);
    expect(guestTime, `guest wall clock ${guestTime} against the host's [${before}, ${after}]`).toBeGreaterThanOrEqual(before - 1);
    expect(guestTime, `guest wall clock ${guestTime} against the host's [${before}, ${after}]`).toBeLessThanOrEqual(after + 1);

    // Timers still tick after the stall: a one-second sleep ends.
    expect((await session.run('sleep 1 && echo slept')).output).toBe('slept\n');

    const interrupts = (await session.run('cat /proc/interrupts')).output;
    expect(interrupts).toMatch(/^\s*0:\s+\d+\s+IO-APIC\s+2-edge\s+timer$/m);
    expect(Number(/^\s*LOC:\s+(\d+)/m.exec(interrupts)?.[1])).toBeGreaterThan(10);

    const dmesg = (await session.run('dmesg')).output;
    expect(dmesg).toContain('Linux version');
    expect(dmesg.split('\n').filter((line) => KERNEL_PROBLEMS.test(line))).toEqual([]);

    expect(await session.powerOff()).toBe(0);
  } catch (error) {
    console.error(`console of the ${manifest.arch} guest (${cpu}):\n${session.tail(200)}`);
    throw error;
  } finally {
    session.kill();
    // The whole console, for reading what the kernel said when a check fails (CI keeps .cache).
    mkdirSync('.cache', { recursive: true });
    writeFileSync(`.cache/boot-realtime-${manifest.arch}.log`, session.console);
  }
}

describe.skipIf(hint !== '')(`Debian guests in real time on a host whose every core is busy${hint}`, () => {
  let load: HostLoad;
  beforeAll(() => {
    load = new HostLoad();
  });
  afterAll(() => load.stop());

  it.concurrent('x86-64 with kvm-clock boots to the shell, survives a 5 s stop of the VM process and keeps the wall clock', async () => {
    await bootBusyHostStallAndCheck(amd64!, 'qemu64', ['kvm-clock']);
  }, TIMEOUT);

  it.concurrent('i386 without kvm-clock (TSC or HPET) boots to the shell, survives a 5 s stop of the VM process and keeps the wall clock', async () => {
    await bootBusyHostStallAndCheck(i386!, 'tsvirt-max,-kvmclock', ['tsc', 'hpet']);
  }, TIMEOUT);
});
