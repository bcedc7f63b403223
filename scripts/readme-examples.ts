/**
 * The examples in the packages' READMEs that CI executes: a ```ts or ```js
 * block right after a line `<!-- Executed in CI: ... -->`. Each is a whole
 * program, as a user would paste it into a file of an ESM project that has
 * installed the package: it imports what it uses, asserts what it shows
 * (node:assert), and may write files into its working directory.
 *
 * tests/doc-examples.test.ts runs them against the sources;
 * scripts/consumer-check runs them installed from the packed tarballs.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repositoryRoot = fileURLToPath(new URL('../', import.meta.url));
export const packagesRoot = path.join(repositoryRoot, 'packages');

/** The marker line before an executed example. */
export const EXECUTED_MARKER = /^<!--\s*Executed in CI\b.*-->\s*$/i;

export interface ReadmeExample {
  /** Package directory name, e.g. `storage`. */
  packageName: string;
  /** 1-based line of the opening fence in README.md. */
  line: number;
  language: 'ts' | 'js';
  code: string;
}

/** The executed examples of one README, in order. */
export function executedExamples(packageName: string, text = readFileSync(path.join(packagesRoot, packageName, 'README.md'), 'utf8')): ReadmeExample[] {
  const lines = text.split('\n');
  const found: ReadmeExample[] = [];
  for (let index = 0; index < lines.length - 1; index++) {
    if (!EXECUTED_MARKER.test(lines[index]!)) continue;
    const fence = /^```(ts|typescript|js|javascript)\s*$/.exec(lines[index + 1]!);
    if (fence === null) throw new Error(`packages/${packageName}/README.md:${index + 1}: an "Executed in CI" marker must be followed by a \`\`\`ts or \`\`\`js block`);
    const end = lines.findIndex((line, at) => at > index + 1 && line.startsWith('```'));
    if (end < 0) throw new Error(`packages/${packageName}/README.md:${index + 2}: the example's code block is not closed`);
    const language = fence[1]!.startsWith('t') ? 'ts' : 'js';
    found.push({ packageName, line: index + 2, language, code: `${lines.slice(index + 2, end).join('\n')}\n` });
  }
  return found;
}

/** The `@tsvirt/...` specifiers a program imports (static and dynamic, type-only included). */
export function tsvirtImports(code: string): string[] {
  const specifiers = new Set<string>();
  for (const match of code.matchAll(/(?:from|import)\s*\(?\s*['"](@tsvirt\/[a-z0-9-]+(?:\/[a-z0-9-]+)?)['"]/g)) specifiers.add(match[1]!);
  return [...specifiers].sort();
}

/** The package directory names a program's `@tsvirt/...` imports name. */
export function importedPackages(code: string): string[] {
  return [...new Set(tsvirtImports(code).map((specifier) => specifier.split('/')[1]!))].sort();
}

/** Packages with code (src/index.ts), by directory name. */
export function packagesWithCode(): string[] {
  return readdirSync(packagesRoot)
    .filter((name) => existsSync(path.join(packagesRoot, name, 'src', 'index.ts')))
    .sort();
}

/** A package's package.json. */
export function manifestOf(packageName: string): {
  name: string;
  version: string;
  private?: boolean;
  exports?: Record<string, unknown>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
} {
  return JSON.parse(readFileSync(path.join(packagesRoot, packageName, 'package.json'), 'utf8'));
}

/** The package and every workspace package it depends on, directly or not (directory names). */
export function workspaceClosure(packageName: string): string[] {
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const dependency of Object.keys(manifestOf(name).dependencies ?? {})) {
      if (dependency.startsWith('@tsvirt/')) visit(dependency.slice('@tsvirt/'.length));
    }
  };
  visit(packageName);
  return [...seen].sort();
}
