import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeImageFile } from '../image-file.js';
import { QemuTools } from '../testing/qemu-tools.js';
import { createQcow2 } from './create.js';

const qemu = QemuTools.find();
const dir = mkdtempSync(join(tmpdir(), 'tsvirt-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const source = fileURLToPath(new URL('..', import.meta.url));
const REGION = 5120;

function pattern(index: number): Uint8Array {
  return Uint8Array.from({ length: 5000 }, (_, i) => (i * 13 + index * 101 + 1) & 0xff || 1);
}

/** The writer: distinct regions, a flush every few writes (announced), a snapshot now and then. */
const writer = `
import { NodeImageFile } from ${JSON.stringify(pathToFileURL(join(source, 'image-file.ts')).href)};
import { Qcow2Backend } from ${JSON.stringify(pathToFileURL(join(source, 'qcow2/qcow2.ts')).href)};
const [path] = process.argv.slice(2);
const image = await Qcow2Backend.open(await NodeImageFile.open(path));
const pattern = ${pattern.toString()};
for (let i = 0; (i + 1) * ${REGION} <= image.size; i++) {
  await image.writeAt(i * ${REGION} + (i % 7) * 13, pattern(i));
  if (i % 20 === 19) await image.createSnapshot('s' + i);
  if (i % 5 === 4) {
    await image.flush();
    process.stdout.write('flushed ' + (i + 1) + '\\n');
  }
}
process.stdout.write('done\\n');
await new Promise(() => {});
`;

describe.skipIf(!qemu)('crash consistency: a writer killed with SIGKILL', () => {
  const tools = qemu!;
  const script = join(dir, 'writer.mts');
  writeFileSync(script, writer);

  it.each([3, 11, 40, 90])('killed after %i flushes: opens, qemu-img check shows at most leaks, flushed writes are all there', async (killAfter) => {
    const path = join(dir, `crash-${killAfter}.qcow2`);
    const image = await createQcow2(await NodeImageFile.open(path, { create: true }), { size: 2 << 20, clusterSize: 4096 });
    await image.close();
    const child = spawn(process.execPath, ['--import', 'tsx', script, path], { cwd: fileURLToPath(new URL('../../../..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
    let flushed = 0;
    let lines = 0;
    await new Promise<void>((resolve) => {
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (text: string) => {
        for (const line of text.split('\n')) {
          const match = /^flushed (\d+)/.exec(line);
          if (match) {
            flushed = Number(match[1]);
            if (++lines === killAfter) child.kill('SIGKILL');
          } else if (line === 'done') child.kill('SIGKILL');
        }
      });
      child.on('exit', () => resolve());
    });
    expect(flushed).toBeGreaterThan(0);
    const check = tools.check(path);
    expect(check.result.corruptions ?? 0).toBe(0);
    expect([0, 3]).toContain(check.status);
    const raw = join(dir, `crash-${killAfter}.raw`);
    tools.img(['convert', '-O', 'raw', path, raw]);
    const bytes = readFileSync(raw);
    for (let i = 0; i < flushed; i++) {
      const at = i * REGION + (i % 7) * 13;
      expect(Buffer.compare(bytes.subarray(at, at + 5000), pattern(i))).toBe(0);
    }
  });
});
