import { nasmAvailable } from '../assemble.js';
import { HostOracle } from './host-oracle.js';

/**
 * The host oracle as a test file uses it.
 *
 * A missing tool (gcc, nasm) or host CPU feature skips the suites outside CI,
 * with the reason printed, and fails them in CI, where `.ci/run` installs the
 * tools. 32-bit cases are the exception: they need the host kernel to run
 * compatibility-mode code, which some hosts cannot do at all (a kernel with
 * IA32 emulation off, or a hypervisor without 32-bit user mode, such as the
 * PVM guests CI runs on). Nothing a test can install provides that, so those
 * suites skip everywhere, again with the reason printed.
 */
export interface OracleForTests {
  /** Skip the suites: the oracle is unavailable and this is not CI. */
  readonly skip: boolean;
  /** Skip the 32-bit suites: `skip`, or this host cannot run 32-bit code. */
  readonly skip32: boolean;
  /** The oracle; throws why it is unavailable (which fails the test in CI). */
  require(): HostOracle;
}

export interface OracleForTestsOptions {
  /** Assemble with nasm (default true): a missing nasm makes the oracle unavailable. */
  readonly nasm?: boolean;
  /** Another prerequisite the caller checked, and what is missing if it failed. */
  readonly missing?: string;
  /** Names the suites in the skip messages. */
  readonly suite: string;
}

export async function oracleForTests(options: OracleForTestsOptions): Promise<OracleForTests> {
  const missing = options.missing ?? ((options.nasm ?? true) && !nasmAvailable() ? 'nasm is missing (apt-get install nasm)' : undefined);
  const created = missing === undefined ? await HostOracle.create({ requireBits: [64] }) : { unavailable: missing };
  if ('unavailable' in created) {
    const skip = !process.env.CI;
    if (skip) console.warn(`skipping ${options.suite}: ${created.unavailable}`);
    return {
      skip,
      skip32: skip,
      require: () => {
        throw new Error(created.unavailable);
      },
    };
  }
  if (created.unavailable32 !== undefined) console.warn(`skipping the 32-bit cases of ${options.suite}: ${created.unavailable32}`);
  return { skip: false, skip32: created.unavailable32 !== undefined, require: () => created };
}
