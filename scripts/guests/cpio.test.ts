import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeCpio } from './cpio.js';

// Skipped only outside CI when GNU cpio is missing (scripts/install-system-deps.sh installs it).
const hasCpio = spawnSync('cpio', ['--version']).status === 0;

describe('writeCpio', () => {
  const archive = writeCpio([
    { kind: 'directory', path: '/bin' },
    { kind: 'file', path: '/bin/hello', data: new TextEncoder().encode('#!/bin/sh\necho hi\n'), mode: 0o755 },
    { kind: 'file', path: 'odd', data: new Uint8Array([1, 2, 3]) },
    { kind: 'symlink', path: '/bin/sh', target: 'hello' },
  ]);

  it('pads every header and body to four bytes and ends with the trailer', () => {
    expect(archive.length % 4).toBe(0);
    const text = new TextDecoder('latin1').decode(archive);
    expect(text.startsWith('070701')).toBe(true);
    expect(text).toContain('TRAILER!!!\0');
  });

  it('refuses paths that climb out of the archive', () => {
    expect(() => writeCpio([{ kind: 'directory', path: '../etc' }])).toThrow(/bad archive path/);
  });

  // GNU cpio is the independent judge of the format (installed by scripts/install-system-deps.sh).
  it.skipIf(!hasCpio && !process.env.CI)('is read back by GNU cpio with names, modes, contents and links intact', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-cpio-'));
    try {
      writeFileSync(path.join(dir, 'archive.cpio'), archive);
      const result = spawnSync('sh', ['-c', 'cpio -idm --quiet < archive.cpio'], { cwd: dir });
      expect(result.status, result.stderr.toString()).toBe(0);
      expect(readFileSync(path.join(dir, 'bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
      expect(statSync(path.join(dir, 'bin/hello')).mode & 0o777).toBe(0o755);
      expect([...readFileSync(path.join(dir, 'odd'))]).toEqual([1, 2, 3]);
      expect(readlinkSync(path.join(dir, 'bin/sh'))).toBe('hello');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
