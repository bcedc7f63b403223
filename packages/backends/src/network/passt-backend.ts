import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ignoreEvents, type NetworkBackend, type NetworkFrontend, type Observer, TsvirtError } from '@tsvirt/interfaces';
import type { NetworkBackendEvent, NetworkBackendStatistics } from './frame-link.js';
import { StreamNetworkBackend } from './stream-backend.js';

/** A port forwarded from the host to the guest (QEMU's `hostfwd=tcp:ADDR:HOSTPORT-:GUESTPORT`). */
export interface HostForward {
  readonly protocol: 'tcp' | 'udp';
  /** The host address to listen on; all of the host's when absent. */
  readonly hostAddress?: string;
  readonly hostPort: number;
  readonly guestPort: number;
}

export interface PasstNetworkBackendOptions {
  readonly hostForwards?: readonly HostForward[];
  /** The passt executable (default: `passt` on the PATH). */
  readonly passt?: string;
  /** Milliseconds to wait for passt's socket (default 10 s). */
  readonly startTimeoutMs?: number;
  readonly observer?: Observer<NetworkBackendEvent>;
}

/** passt could not be started, or stopped answering. */
export class PasstError extends TsvirtError {
  constructor(message: string) {
    super('NET_PASST', message);
  }
}

/**
 * User-mode networking (QEMU's `-netdev user`) through passt, as libvirt
 * does it: one passt process per VM, started here with a UNIX socket in a
 * private directory, spoken to in QEMU's stream framing. passt answers DHCP,
 * NDP and DNS, and carries the guest's TCP, UDP and ICMP through the host's
 * own sockets, with no privileges; the gateway address reaches the host's
 * loopback. `hostForwards` become passt's `-t`/`-u` port forwards. passt
 * runs in the foreground (`-f`), as the caller's user (`--runas`), and
 * quits when its one client goes (`-1`); `close()` also stops it.
 *
 * @example
 * ```ts
 * const user = await PasstNetworkBackend.open({ hostForwards: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8080, guestPort: 80 }] });
 * const nic = new VirtioNet({ backend: user }); // in the guest: udhcpc -i eth0
 * ```
 */
export class PasstNetworkBackend implements NetworkBackend {
  private constructor(
    private readonly link: StreamNetworkBackend,
    private readonly child: ChildProcess,
    private readonly directory: string,
    private readonly output: () => string,
  ) {}

  /** Starts passt and connects to it; rejects with `PasstError` saying why (not installed, a port taken, …). */
  static async open(options: PasstNetworkBackendOptions = {}): Promise<PasstNetworkBackend> {
    const forwards = (options.hostForwards ?? []).flatMap((forward) => [forward.protocol === 'tcp' ? '-t' : '-u', passtForward(forward)]);
    const directory = mkdtempSync(path.join(tmpdir(), 'tsvirt-passt-'));
    const socketPath = path.join(directory, 'passt.socket');
    const args = ['-f', '-q', '-e', '-1', '-s', socketPath, ...forwards];
    if (typeof process.getuid === 'function' && typeof process.getgid === 'function') args.push('--runas', `${process.getuid()}:${process.getgid()}`);
    const executable = options.passt ?? 'passt';
    let output = '';
    const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer) => {
      // passt also says that it cannot reach syslog; that is noise here.
      output += chunk.toString().split('\n').filter((line) => !/syslog/.test(line)).join('\n');
      if (output.length > 8192) output = output.slice(-8192);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const cleanUp = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      rmSync(directory, { recursive: true, force: true });
    };
    try {
      await waitForSocket(child, socketPath, options.startTimeoutMs ?? 10_000, executable, () => output);
      const link = await StreamNetworkBackend.open({ server: false, address: { type: 'unix', path: socketPath }, ...(options.observer === undefined ? {} : { observer: options.observer }) });
      const backend = new PasstNetworkBackend(link, child, directory, () => output);
      const observer = options.observer ?? ignoreEvents;
      child.on('exit', (code, signal) => observer({ kind: 'disconnected', reason: `passt exited (${signal ?? code})${output.trim() === '' ? '' : `: ${output.trim()}`}` }));
      return backend;
    } catch (error) {
      cleanUp();
      throw error;
    }
  }

  /** passt's own words so far (errors and warnings). */
  get passtOutput(): string {
    return this.output();
  }

  send(frame: Uint8Array): boolean {
    return this.link.send(frame);
  }

  connect(frontend: NetworkFrontend): void {
    this.link.connect(frontend);
  }

  notifyReceiveReady(): void {
    this.link.notifyReceiveReady();
  }

  get statistics(): NetworkBackendStatistics {
    return this.link.statistics;
  }

  get linkUp(): boolean {
    return this.link.linkUp;
  }

  async close(): Promise<void> {
    await this.link.close();
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
    }
    rmSync(this.directory, { recursive: true, force: true });
  }
}

/** passt's forward spec: `[ADDR/]HOSTPORT:GUESTPORT`. */
function passtForward(forward: HostForward): string {
  for (const port of [forward.hostPort, forward.guestPort]) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PasstError(`port ${port} is not 1 to 65535`);
  }
  const address = forward.hostAddress === undefined || forward.hostAddress === '' ? '' : `${forward.hostAddress}/`;
  return `${address}${forward.hostPort}:${forward.guestPort}`;
}

async function waitForSocket(child: ChildProcess, socketPath: string, timeoutMs: number, executable: string, output: () => string): Promise<void> {
  let failure: Error | undefined;
  let exited: string | undefined;
  child.once('error', (error: NodeJS.ErrnoException) => {
    failure =
      error.code === 'ENOENT'
        ? new PasstError(`${executable} is not installed: user-mode networking runs passt, as libvirt does (Debian: apt-get install passt)`)
        : new PasstError(`cannot run ${executable}: ${error.message}`);
  });
  child.once('exit', (code, signal) => (exited = signal ?? String(code)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (failure !== undefined) throw failure;
    if (exited !== undefined) throw new PasstError(`passt exited (${exited}) before it was ready: ${output().trim() || 'it said nothing'}`);
    if (existsSync(socketPath)) return;
    if (Date.now() > deadline) throw new PasstError(`passt made no socket within ${timeoutMs} ms: ${output().trim() || 'it said nothing'}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
