/**
 * `pnpm consumer-check`: packs every published package and checks each as a
 * consumer installs it (see consumer-check.ts). `--keep` leaves the temporary
 * projects in place to look at; package names (`storage vm`) check only those.
 */
import { formatReport, runConsumerCheck } from './consumer-check.js';

const keep = process.argv.includes('--keep');
const only = process.argv.slice(2).filter((argument) => !argument.startsWith('--'));
const report = await runConsumerCheck({ keep, log: (line) => console.log(line), ...(only.length > 0 ? { only } : {}) });
console.log(formatReport(report));
if (keep) console.log(`projects kept in ${report.workDir}`);
const failed = [...report.tarballs, ...report.packages.flatMap((result) => result.steps)].some((entry) => !entry.ok);
process.exitCode = failed || report.packages.length === 0 ? 1 : 0;
