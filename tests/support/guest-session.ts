import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { GuestManifest } from '../../scripts/guests/build.js';

const CLI = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

export interface SessionOptions {
  /** `--cpu`, with QEMU-style feature switches (`qemu64,-kvmclock`). */
  readonly cpu?: string;
  readonly deterministic?: boolean;
  readonly memory?: string;
  /** Appended to the kernel command line after `console=ttyS0 panic=-1`. */
  readonly append?: string;
  /** More `tsvirt run` arguments (devices, --qmp). */
  readonly args?: readonly string[];
}

export interface CommandResult {
  readonly output: string;
  readonly status: number;
}

/**
 * A booted guest kit image driven through its serial console, as a user at
 * the terminal drives it: the built `tsvirt run` with `--serial stdio` on
 * pipes, commands typed into busybox's shell and their output framed by
 * markers. The guest boots once and answers many commands.
 */
export class GuestSession {
  private text = '';
  private readonly waiters = new Set<() => void>();
  private exitStatus: number | null | undefined;
  private sequence = 0;

  private constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('latin1');
    child.stdout!.on('data', (chunk: string) => {
      this.text += chunk.replace(/\r/g, '');
      this.wake();
    });
    child.on('exit', (code, signal) => {
      this.exitStatus = code ?? (signal === null ? null : -1);
      this.wake();
    });
  }

  static start(manifest: GuestManifest, options: SessionOptions = {}): GuestSession {
    const args = [CLI, 'run', '--kernel', manifest.kernel, '--initrd', manifest.initramfs, '--memory', options.memory ?? '256M', '--serial', 'stdio'];
    args.push('--append', `console=ttyS0 panic=-1${options.append === undefined ? '' : ` ${options.append}`}`);
    if (options.cpu !== undefined) args.push('--cpu', options.cpu);
    if (options.deterministic === true) args.push('--deterministic');
    args.push(...(options.args ?? []));
    return new GuestSession(spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] }));
  }

  /** Everything the guest has written on its console so far (carriage returns removed). */
  get console(): string {
    return this.text;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits until the console matches `pattern` (searched from `from`), the process exits, or `timeoutMs` passes. */
  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.text.slice(from));
      if (match !== null) return match;
      if (this.exitStatus !== undefined) throw new Error(`tsvirt run exited (${this.exitStatus}) before the console showed ${pattern}; console tail:\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${pattern} on the console within ${timeoutMs} ms; console tail:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const waiters = this.waiters;
        function done(): void {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  /** Waits for the guest kit's interactive shell. */
  async shell(timeoutMs: number): Promise<void> {
    await this.waitFor(/tsvirt: busybox shell/, timeoutMs);
  }

  /**
   * Types `command` into the shell and returns what it printed and its exit
   * status. The markers are typed split by quotes, so the terminal's echo of
   * the line itself never matches them.
   */
  async run(command: string, timeoutMs = 120_000): Promise<CommandResult> {
    const id = ++this.sequence;
    const from = this.text.length;
    this.child.stdin!.write(`echo TSVIRT''-BEGIN ${id}; ${command}; echo TSVIRT''-END ${id} $?\n`);
    const match = await this.waitFor(new RegExp(`TSVIRT-BEGIN ${id}\\n([\\s\\S]*?)TSVIRT-END ${id} (\\d+)\\n`), timeoutMs, from);
    return { output: match[1]!, status: Number(match[2]) };
  }

  /** Stops the VM process for `ms` (SIGSTOP), as a busy or suspended host would, then lets it go on (SIGCONT). */
  async stall(ms: number): Promise<void> {
    this.child.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.child.kill('SIGCONT');
  }

  /** `poweroff -f` in the guest; resolves to tsvirt run's exit status. */
  async powerOff(timeoutMs = 120_000): Promise<number | null> {
    this.child.stdin!.write('poweroff -f\n');
    const deadline = Date.now() + timeoutMs;
    while (this.exitStatus === undefined) {
      if (Date.now() > deadline) throw new Error(`the guest did not power off within ${timeoutMs} ms; console tail:\n${this.tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return this.exitStatus;
  }

  /** Ends the VM process if it still runs (cleanup after a failed test). */
  kill(): void {
    if (this.exitStatus === undefined) this.child.kill('SIGKILL');
  }

  tail(lines = 60): string {
    return this.text.split('\n').slice(-lines).join('\n');
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/**
 * A busy host: one spinning process per host core, started and stopped by
 * the test itself (and killed with the test process if it dies).
 */
export class HostLoad {
  private readonly spinners: ChildProcess[];
  private readonly cleanup = (): void => this.stop();

  constructor(processes = availableParallelism()) {
    this.spinners = Array.from({ length: processes }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
    process.on('exit', this.cleanup);
  }

  get count(): number {
    return this.spinners.length;
  }

  stop(): void {
    for (const spinner of this.spinners) if (spinner.exitCode === null && spinner.signalCode === null) spinner.kill('SIGKILL');
    process.off('exit', this.cleanup);
  }
}

/** The guest's wall clock in seconds, from busybox `adjtimex` (microseconds; `date` has only seconds). */
export function parseAdjtimexTime(output: string): number {
  const seconds = /time\.tv_sec:\s+(\d+)/.exec(output)?.[1];
  const microseconds = /time\.tv_usec:\s+(\d+)/.exec(output)?.[1];
  if (seconds === undefined || microseconds === undefined) throw new Error(`adjtimex printed no time:\n${output}`);
  return Number(seconds) + Number(microseconds) / 1e6;
}
