import { TsvirtError } from '@tsvirt/interfaces';
import { runImgCommand, type CommandOutput } from '@tsvirt/storage';
import { UsageError, runVm } from './run-command.js';

export type { CommandOutput } from '@tsvirt/storage';

const USAGE = `usage: tsvirt <command> [arguments]

commands:
  run --kernel FILE ...  boot a kernel, as QEMU's -kernel does: [--initrd FILE] [--append TEXT]
                         [--memory SIZE] [--cpu qemu64|max|tsvirt-max|Opteron_G1[,+F|,-F]...] [--no-reboot]
                         [--device pc-testdev|pci-testdev|isa-debug-exit,iobase=P,iosize=N] [--smp 1]
                         [--serial stdio|file:PATH|tcp:HOST:PORT] [--deterministic]
                         [--qmp unix:PATH,server=on,wait=off|tcp:HOST:PORT,...]... [--name NAME] [-S]
  img <subcommand> ...   disk image tools, with qemu-img's arguments:
                         create, info, check, convert, snapshot, commit, rebase,
                         resize, map, measure, compare, amend (tsvirt img --help)
  help                   this text
`;

/**
 * The `tsvirt` command line. Returns the exit status; all output goes
 * through `output`, so the whole CLI is testable in-process.
 */
export async function runCli(argv: readonly string[], output: CommandOutput): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await runVm(rest, output);
      case 'img':
        return await runImgCommand(rest, output);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        output.stdout(USAGE);
        return command === undefined ? 1 : 0;
      default:
        output.stderr(`tsvirt: unknown command '${command}' (try 'tsvirt help')\n`);
        return 1;
    }
  } catch (error) {
    if (error instanceof UsageError) {
      output.stderr(`tsvirt ${command}: ${error.message}\n`);
      return 2;
    }
    // Commands report their own errors; this catches only what escaped them, still as one line.
    const message = error instanceof TsvirtError || error instanceof Error ? error.message : String(error);
    output.stderr(`tsvirt: ${message}\n`);
    return 1;
  }
}
