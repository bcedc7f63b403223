/**
 * Users run real time: the guest's clocks follow the host's, and the host is
 * often busy. Both Debian kernels boot here in real-time mode while every
 * host core spins in a process this file starts, survive the VM process being
 * stopped for 5 s, and keep the wall clock. The x86-64 guest is offered
 * kvm-clock (the default CPU model has it), the i386 guest is not.
 *
 * The x86-64 guest also carries the devices a management stack drives
 * through QMP, each checked from outside by the host: virtio-rng and the
 * balloon on the virtio-mmio transport (found through the DSDT), virtio-serial
 * with a console on a TCP socket and a named port in a file, and an i6300esb
 * watchdog that pauses the VM when Linux's driver stops feeding it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuestManifest } from '../scripts/guests/build.js';
import { debianGuest, KERNEL_PROBLEMS } from './support/debian-guest.js';
import { GuestSession, HostLoad, parseAdjtimexTime } from './support/guest-session.js';
import { QmpClient, type QmpMessage } from './support/qmp-client.js';

const amd64 = debianGuest('amd64');
const i386 = debianGuest('i386');
const hint = amd64 === undefined || i386 === undefined ? ' (skipped: run `pnpm guests --arch all` to fetch the Debian kernels and busybox)' : '';
const TIMEOUT = 40 * 60_000;
const STALL_MS = 5_000;

/** Host ends for the x86-64 guest's devices, and the checks that use them once the guest is up. */
interface DeviceChecks {
  readonly args: readonly string[];
  check(session: GuestSession): Promise<void>;
  close(): void;
}

async function bootBusyHostStallAndCheck(manifest: GuestManifest, cpu: string, clocksources: readonly string[], devices?: DeviceChecks): Promise<void> {
  const session = GuestSession.start(manifest, { cpu, args: devices?.args });
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

    await devices?.check(session);

    const dmesg = (await session.run('dmesg')).output;
    expect(dmesg).toContain('Linux version');
    expect(dmesg.split('\n').filter((line) => KERNEL_PROBLEMS.test(line))).toEqual([]);

    expect(await session.powerOff()).toBe(0);
  } catch (error) {
    console.error(`console of the ${manifest.arch} guest (${cpu}):\n${session.tail(200)}`);
    throw error;
  } finally {
    session.kill();
    devices?.close();
    // The whole console, for reading what the kernel said when a check fails (CI keeps .cache).
    mkdirSync('.cache', { recursive: true });
    writeFileSync(`.cache/boot-realtime-${manifest.arch}.log`, session.console);
  }
}

const MiB = 1 << 20;
const GUEST_MEMORY = 256 * MiB;

/** Waits for the first message `matches` accepts among what `client` receives, collecting events on the way. */
async function nextMatching(client: QmpClient, matches: (message: QmpMessage) => boolean): Promise<QmpMessage> {
  for (;;) {
    const message = await client.next();
    if (matches(message)) return message;
  }
}

async function qmp(client: QmpClient, execute: string, args?: Record<string, unknown>): Promise<unknown> {
  const { answer } = await client.request(JSON.stringify({ execute, ...(args === undefined ? {} : { arguments: args }) }));
  if ('error' in answer) throw new Error(`${execute}: ${JSON.stringify(answer.error)}`);
  return answer.return;
}

/** MemTotal in kB, as the guest sees it. */
async function memTotal(session: GuestSession): Promise<number> {
  return Number(/MemTotal:\s+(\d+) kB/.exec((await session.run('grep MemTotal /proc/meminfo')).output)?.[1]);
}

async function managementDevices(): Promise<DeviceChecks> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-realtime-devices-'));
  const qmpSocket = path.join(dir, 'vm.qmp');
  const portFile = path.join(dir, 'vport.txt');
  // A free port for the console's TCP server: the host connects to it as a user's terminal would.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const consolePort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  let consoleSocket: Socket | undefined;
  return {
    args: [
      '--device', 'virtio-rng-device',
      '--device', 'virtio-balloon-device',
      '--chardev', `socket,id=console0,host=127.0.0.1,port=${consolePort},server=on,wait=off`,
      '--chardev', `file,id=port1,path=${portFile}`,
      '--device', 'virtio-serial-pci',
      '--device', 'virtconsole,chardev=console0',
      '--device', 'virtserialport,chardev=port1,name=org.tsvirt.port',
      '--device', 'i6300esb',
      '--watchdog-action', 'pause',
      '--qmp', `unix:${qmpSocket},server=on,wait=off`,
    ],
    async check(session) {
      const client = await QmpClient.open(qmpSocket);
      expect(Object.keys(await client.next())).toEqual(['QMP']);
      await qmp(client, 'qmp_capabilities');

      // virtio-mmio: Linux's virtio_mmio bound both LNRO0005 devices from the DSDT; the rng feeds /dev/hwrng.
      expect((await session.run('ls -1 /sys/bus/platform/drivers/virtio-mmio')).output).toMatch(/LNRO0005:00\n[\s\S]*LNRO0005:01/);
      expect((await session.run('cat /sys/class/misc/hw_random/rng_current')).output).toBe('virtio_rng.0\n');
      expect((await session.run('head -c 64 /dev/hwrng | wc -c')).output.trim()).toBe('64');

      // The balloon: QMP asks the guest to shrink by 64 MiB; the driver gives the pages and reports it.
      const before = await memTotal(session);
      expect(await qmp(client, 'query-balloon')).toEqual({ actual: GUEST_MEMORY });
      await qmp(client, 'balloon', { value: GUEST_MEMORY - 64 * MiB });
      await nextMatching(client, (message) => message.event === 'BALLOON_CHANGE' && (message.data as { actual: number }).actual === GUEST_MEMORY - 64 * MiB);
      expect(await qmp(client, 'query-balloon')).toEqual({ actual: GUEST_MEMORY - 64 * MiB });
      expect(before - (await memTotal(session))).toBe(64 * 1024);
      await qmp(client, 'balloon', { value: GUEST_MEMORY });
      await nextMatching(client, (message) => message.event === 'BALLOON_CHANGE' && (message.data as { actual: number }).actual === GUEST_MEMORY);
      expect(await memTotal(session)).toBe(before);

      // virtio-serial: hvc0 both ways over the host's TCP connection, and the named port into its file.
      const received: Buffer[] = [];
      consoleSocket = await new Promise<Socket>((resolve, reject) => {
        const socket = connect(consolePort, '127.0.0.1', () => resolve(socket));
        socket.on('error', reject);
      });
      consoleSocket.on('data', (data: Buffer) => received.push(data));
      expect((await session.run('(head -n 1 /dev/hvc0 > /tmp/from-host &) ; echo to-host-over-hvc0 > /dev/hvc0')).status).toBe(0);
      consoleSocket.write('from-host-over-hvc0\n');
      expect((await session.run('for i in 1 2 3 4 5 6 7 8 9 10; do [ -s /tmp/from-host ] && break; sleep 1; done; cat /tmp/from-host')).output).toBe('from-host-over-hvc0\n');
      expect(Buffer.concat(received).toString('latin1')).toContain('to-host-over-hvc0');
      expect((await session.run('cat /sys/class/virtio-ports/vport0p1/name; echo to-the-port-file > /dev/vport0p1')).output).toBe('org.tsvirt.port\n');
      expect(readFileSync(portFile, 'latin1')).toBe('to-the-port-file\n');

      // The watchdog (the kit carries watchdog.ko and i6300esb.ko unloaded): Linux's i6300esb with a 2 s heartbeat, opened and closed without the magic 'V', keeps
      // counting; when it runs out the VM pauses (WATCHDOG, STOP, status watchdog) until cont.
      const fed = await session.run('insmod /lib/modules/watchdog.ko && insmod /lib/modules/i6300esb.ko heartbeat=2 && printf x > /dev/watchdog && echo armed');
      expect(fed.output).toContain('armed');
      expect(await nextMatching(client, (message) => message.event === 'WATCHDOG')).toMatchObject({ data: { action: 'pause' } });
      expect(await nextMatching(client, (message) => message.event === 'STOP')).toMatchObject({ event: 'STOP' });
      expect(await qmp(client, 'query-status')).toEqual({ status: 'watchdog', singlestep: false, running: false });
      await qmp(client, 'cont');
      expect((await session.run('echo alive after the watchdog')).output).toBe('alive after the watchdog\n');
    },
    close() {
      consoleSocket?.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.skipIf(hint !== '')(`Debian guests in real time on a host whose every core is busy${hint}`, () => {
  let load: HostLoad;
  beforeAll(() => {
    load = new HostLoad();
  });
  afterAll(() => load.stop());

  it.concurrent('x86-64 with kvm-clock boots to the shell, survives a 5 s stop of the VM process and keeps the wall clock; its virtio-mmio, balloon, virtio-serial and watchdog devices work under QMP', async () => {
    await bootBusyHostStallAndCheck(amd64!, 'qemu64', ['kvm-clock'], await managementDevices());
  }, TIMEOUT);

  it.concurrent('i386 without kvm-clock (TSC or HPET) boots to the shell, survives a 5 s stop of the VM process and keeps the wall clock', async () => {
    await bootBusyHostStallAndCheck(i386!, 'tsvirt-max,-kvmclock', ['tsc', 'hpet']);
  }, TIMEOUT);
});
