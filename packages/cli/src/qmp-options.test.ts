import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { parseQmpOption, parseVmName, QmpOptionError } from './qmp-options.js';
import { parseRunArguments, UsageError } from './run-command.js';

describe('--qmp, --name and -S', () => {
  it('takes QEMU’s -qmp socket syntax, several times', () => {
    expect(parseQmpOption('unix:/tmp/vm.qmp,server=on,wait=off')).toEqual({ kind: 'unix', path: '/tmp/vm.qmp' });
    expect(parseQmpOption('unix:/tmp/vm.qmp,server,nowait')).toEqual({ kind: 'unix', path: '/tmp/vm.qmp' });
    expect(parseQmpOption('unix:/tmp/vm.qmp')).toEqual({ kind: 'unix', path: '/tmp/vm.qmp' });
    expect(parseQmpOption('tcp:localhost:4444,server=on,wait=off')).toEqual({ kind: 'tcp', host: 'localhost', port: 4444 });
    expect(parseQmpOption('tcp::4444,server=on,wait=off')).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 4444 });
    expect(parseQmpOption('tcp:[::1]:4444,server=on,wait=off')).toEqual({ kind: 'tcp', host: '::1', port: 4444 });
    const args = parseRunArguments(['--kernel', 'k', '--qmp', 'unix:/a,server=on,wait=off', '--qmp=tcp:127.0.0.1:5000,server=on,wait=off', '--name', 'vm1', '-S']);
    expect(args.qmp).toEqual([
      { kind: 'unix', path: '/a' },
      { kind: 'tcp', host: '127.0.0.1', port: 5000 },
    ]);
    expect(args.name).toBe('vm1');
    expect(args.paused).toBe(true);
    expect(parseRunArguments(['--kernel', 'k', '--paused']).paused).toBe(true);
    expect(parseRunArguments(['--kernel', 'k', '--name', 'guest=vm2,debug-threads=on']).name).toBe('vm2');
  });

  it('refuses what it cannot do with one line naming the problem', () => {
    for (const [text, message] of [
      ['stdio', /--qmp stdio: not a QMP address \(expected unix:PATH,server=on,wait=off or tcp:HOST:PORT,server=on,wait=off\)$/],
      ['unix:', /the Unix socket needs a path/],
      ['unix:/a,server=off', /server=off is not supported: tsvirt listens/],
      ['unix:/a,server=on,wait=on', /wait=on is not supported/],
      ['unix:/a,server=maybe', /server=maybe is not on or off/],
      ['unix:/a,frob=1', /unknown option 'frob=1'/],
      ['tcp:localhost:99999', /port 99999 is not 1-65535/],
      ['tcp:localhost', /not a QMP address/],
    ] as const) {
      expect(() => parseQmpOption(text), text).toThrow(QmpOptionError);
      expect(() => parseQmpOption(text), text).toThrow(message);
    }
    expect(() => parseVmName('')).toThrow(/--name: the name is empty/);
    expect(() => parseVmName('guest=a,process=b')).toThrow(/unknown option 'process=b'/);
    // Through `run`: a usage error, one line.
    expect(() => parseRunArguments(['--kernel', 'k', '--qmp', 'pty'])).toThrow(UsageError);
    expect(() => parseRunArguments(['--kernel', 'k', '--qmp'])).toThrow(/^--qmp needs a value$/);
    expect(() => parseRunArguments(['--kernel', 'k', '--qmp', 'pty'])).toThrow(/^--qmp pty: not a QMP address[^\n]*$/);
  });

  it('through `tsvirt run`: a bad --qmp is a usage error (status 2), a socket it cannot listen on status 1, both one line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-qmp-options-'));
    try {
      // Checked before the kernel is loaded into a machine: any readable file will do.
      const kernel = path.join(dir, 'kernel');
      writeFileSync(kernel, new Uint8Array(4096));
      let stderr = '';
      const run = (...argv: string[]) => runCli(['run', '--kernel', kernel, '--serial', `file:${path.join(dir, 'console')}`, ...argv], { stdout: () => {}, stderr: (text) => (stderr += text) });
      expect(await run('--qmp', 'unix:/a,wait=on')).toBe(2);
      expect(stderr).toMatch(/^tsvirt run: --qmp unix:\/a,wait=on: wait=on is not supported[^\n]*\n$/);
      stderr = '';
      expect(await run('--qmp', `unix:${path.join(dir, 'missing', 'vm.qmp')},server=on,wait=off`)).toBe(1);
      expect(stderr).toBe(`tsvirt: --qmp: cannot listen on unix:${path.join(dir, 'missing', 'vm.qmp')}: the directory ${path.join(dir, 'missing')} does not exist\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
