/**
 * Every published package works installed alone from its packed tarball:
 * scripts/consumer-check packs them all, installs each into a fresh npm
 * project of its own, type-checks and runs its README example and its
 * consumer program there (a qcow2 from qemu-img read by @tsvirt/storage
 * alone, instructions single-stepped by @tsvirt/x86-core, a UART driven by
 * @tsvirt/devices-emulated, the multiboot test kernel booted by @tsvirt/vm,
 * the `tsvirt` command of @tsvirt/cli). Runs on the build `pnpm test` makes
 * first; `pnpm consumer-check` runs the same alone.
 */
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatReport, publishedPackages, REQUIRED_TOOLS, runConsumerCheck, type ConsumerCheckReport } from '../scripts/consumer-check/consumer-check.js';

const missing = REQUIRED_TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0);
const hint = missing.length === 0 ? '' : ` (skipped: ${missing.join(', ')} missing; scripts/install-system-deps.sh installs them)`;

// CI never skips: without the tools the check fails there.
describe.skipIf(missing.length > 0 && !process.env.CI)(`packages installed alone from their tarballs${hint}`, () => {
  let report: ConsumerCheckReport;

  beforeAll(async () => {
    report = await runConsumerCheck({ log: (line) => console.log(`consumer check: ${line}`) });
    console.log(formatReport(report));
  }, 600_000);

  it('packs every published package as publishing does, and makes the fixtures', () => {
    expect(report.tarballs.filter((step) => !step.ok).map((step) => `${step.what}\n${step.output}`)).toEqual([]);
    expect(report.tarballs.filter((step) => step.what.startsWith('pnpm pack')).length).toBe(publishedPackages().length);
  });

  it.each(publishedPackages())('@tsvirt/%s installs alone, type-checks and runs its programs', (name) => {
    const result = report.packages.find((entry) => entry.name === name);
    expect(result, `@tsvirt/${name} was not checked (see the tarball steps)`).toBeDefined();
    expect(result!.steps.filter((step) => !step.ok).map((step) => `${step.what}\n${step.output}`)).toEqual([]);
    expect(result!.steps.some((step) => step.what.startsWith('node '))).toBe(true);
  });
});
