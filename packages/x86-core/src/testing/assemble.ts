import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True when `nasm` can be run (tests that assemble skip themselves otherwise). */
export function nasmAvailable(): boolean {
  try {
    execFileSync('nasm', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Assembles NASM source into flat binary bytes (`-f bin`) in a temporary
 * directory. Throws with NASM's messages when the source does not assemble.
 */
export function assemble(source: string, defines: Record<string, string | number> = {}): Uint8Array {
  const directory = mkdtempSync(join(tmpdir(), 'tsvirt-nasm-'));
  try {
    const input = join(directory, 'input.asm');
    const output = join(directory, 'output.bin');
    writeFileSync(input, source);
    const args = ['-f', 'bin', '-o', output, input, ...Object.entries(defines).map(([name, value]) => `-D${name}=${value}`)];
    try {
      execFileSync('nasm', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error);
      throw new Error(`nasm failed:\n${stderr}`);
    }
    return new Uint8Array(readFileSync(output));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
