#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// The interpreter's run loop calls a few dozen instruction handlers; with V8's default
// inlining budget (920 bytes of bytecode per optimised function, 4,600 at most, and the
// compiler copies the loop body once) most stay calls. A larger budget runs guests about
// 20 % faster (the boot row of BENCHMARKS.md is measured through this binary). 30,000 bytes
// is what inlining them all takes, with the memory accessors each brings; at 10,000 the
// budget ran out and the last dozen handlers of the i386 boot stayed calls. It only
// steers the optimising compiler, so it is set before the CPU's code runs hot; the
// interpreter is imported after it. scripts/bench/run.ts sets the same.
setFlagsFromString('--max-inlined-bytecode-size-cumulative=30000 --max-inlined-bytecode-size-absolute=10000');
const { runCli } = await import('./cli.js');

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
