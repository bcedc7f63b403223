import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';

/** True while `pid` runs and is not a zombie (Linux's /proc; elsewhere, while it exists). */
function running(pid: number): boolean {
  try {
    // Every thread, not just the leader: a zombie leader of a multithreaded process (qemu-nbd)
    // may still have threads exiting with the file table, and so the image's locks, open.
    return readdirSync(`/proc/${pid}/task`).some((thread) => {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${thread}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
      } catch {
        return false;
      }
    });
  } catch {
    try {
      process.kill(pid, 0);
      return !existsSync('/proc/self');
    } catch {
      return false;
    }
  }
}

/**
 * Runs QEMU's own image tools, the peers that judge this package's images.
 * Debian package `qemu-utils` provides qemu-img, qemu-io and qemu-nbd.
 */
export class QemuTools {
  private constructor(readonly version: string) {}

  /** The installed tools, or undefined (with the reason) if qemu-img is missing. */
  static find(): QemuTools | undefined {
    const probe = spawnSync('qemu-img', ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0) return undefined;
    return new QemuTools(/version ([\d.]+)/.exec(probe.stdout)?.[1] ?? 'unknown');
  }

  /** The message a skipped test prints. */
  static readonly missing = 'qemu-img not found: install the Debian package qemu-utils to run the QEMU interoperability tests';

  img(args: string[]): string {
    return execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs qemu-img and returns its exit status and output without throwing. */
  imgStatus(args: string[]): { status: number; stdout: string; stderr: string } {
    // A badly damaged image makes qemu-img check print an error line per entry: megabytes.
    const result = spawnSync('qemu-img', args, { encoding: 'utf8', maxBuffer: 256 << 20 });
    return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  }

  /** Runs qemu-io commands against an image (format given, so nothing is probed). */
  io(image: string, format: string, commands: string[], extra: string[] = []): string {
    const args = ['-f', format, ...extra];
    for (const command of commands) args.push('-c', command);
    args.push(image);
    return execFileSync('qemu-io', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs a QEMU tool without blocking the event loop (needed when the peer is served by this process). */
  run(tool: 'qemu-img' | 'qemu-io', args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(tool, args, { encoding: 'utf8', maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
        const status = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ status, stdout, stderr });
      });
    });
  }

  /**
   * Starts qemu-nbd on `image` in the background (it forks once the image is
   * open, so its locks are held when this returns) on the Unix socket
   * `socket`; `stop` ends it.
   */
  serveNbd(image: string, format: string, socket: string, options: { readOnly?: boolean } = {}): { stop(): void } {
    const pidFile = `${socket}.pid`;
    execFileSync('qemu-nbd', ['--fork', `--pid-file=${pidFile}`, '-k', socket, '-f', format, ...(options.readOnly ? ['-r'] : []), image], { stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return {
      stop: () => {
        try {
          // SIGKILL: a test's server has nothing to save, and its locks go with the process at once.
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
        // Until it has exited its locks may linger. It was forked away from us,
        // so nobody may reap it: a zombie has closed its files, which is enough.
        const pause = new Int32Array(new SharedArrayBuffer(4));
        for (let tries = 0; tries < 1000 && running(pid); tries++) Atomics.wait(pause, 0, 0, 10);
        rmSync(pidFile, { force: true });
      },
    };
  }

  /** `qemu-img check --output=json`, with its exit status (0 clean, 2 corrupt, 3 leaks). */
  check(image: string, format = 'qcow2'): { status: number; result: Record<string, unknown> } {
    const { status, stdout } = this.imgStatus(['check', '-f', format, '--output=json', image]);
    let result: Record<string, unknown> = {};
    try {
      result = JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      result = { unparsable: stdout };
    }
    return { status, result };
  }
}
