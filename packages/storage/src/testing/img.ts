import { runImgCommand } from '../tools/img-command.js';

/** Runs `tsvirt img` with its arguments and returns the exit code with everything it printed. */
export async function runImg(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runImgCommand(argv, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { code, stdout, stderr };
}
