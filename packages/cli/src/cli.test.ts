import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await runCli(argv, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { status, stdout, stderr };
}

const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tsvirt', () => {
  it('creates and describes an image through `tsvirt img`', async () => {
    const image = path.join(dir, 'disk.qcow2');
    expect((await cli('img', 'create', '-f', 'qcow2', image, '16M')).status).toBe(0);
    const info = await cli('img', 'info', '--output=json', image);
    expect(info.status).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ format: 'qcow2', 'virtual-size': 16 << 20 });
  });

  it('answers an unknown command with one line and a failure status', async () => {
    const result = await cli('frobnicate');
    expect(result.status).toBe(1);
    expect(result.stderr).toBe("tsvirt: unknown command 'frobnicate' (try 'tsvirt help')\n");
    expect((await cli('help')).stdout).toMatch(/^usage: tsvirt/);
  });

  it('runs as a command from the build (pnpm tsvirt)', () => {
    const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
    const result = spawnSync(process.execPath, [bin, 'img', 'info', path.join(dir, 'missing.qcow2')], { encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/missing\.qcow2/);
  });
});
