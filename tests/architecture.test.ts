/**
 * The dependency rules of DESIGN.md ("Packages and who may import whom"),
 * checked on every import in every package: a package importing what it may
 * not fails CI.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const everythingBelowCli = ['interfaces', 'memory', 'x86-core', 'devices-emulated', 'devices-virtio', 'passthrough-sim', 'storage', 'migration', 'ksm', 'backends'];

/** DESIGN.md's table, as data. */
export const mayImport: Record<string, readonly string[]> = {
  interfaces: [],
  memory: ['interfaces'],
  'x86-core': ['interfaces', 'memory'],
  'devices-emulated': ['interfaces'],
  'devices-virtio': ['interfaces'],
  backends: ['interfaces'],
  'passthrough-sim': ['interfaces'],
  storage: ['interfaces'],
  migration: ['interfaces', 'memory'],
  ksm: ['interfaces', 'memory'],
  vm: everythingBelowCli,
  cli: [...everythingBelowCli, 'vm'],
};

/** Tests may also use a real guest memory, declared as a devDependency. */
const testsMayAlsoImport = ['memory'];

const packagesRoot = fileURLToPath(new URL('../packages/', import.meta.url));

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [full] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers: string[] = [];
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    specifiers.push((match[1] ?? match[2] ?? match[3])!);
  }
  return specifiers;
}

function isTest(file: string): boolean {
  return /\.(test|prop\.test|bench)\.ts$/.test(file) || file.includes(`${path.sep}testing${path.sep}`);
}

describe('package dependency rules (DESIGN.md)', () => {
  it('every package of the design exists as @tsvirt/<folder>', () => {
    for (const name of Object.keys(mayImport)) {
      const manifest = JSON.parse(readFileSync(path.join(packagesRoot, name, 'package.json'), 'utf8'));
      expect(manifest.name).toBe(`@tsvirt/${name}`);
    }
    expect(readdirSync(packagesRoot).sort()).toEqual(Object.keys(mayImport).sort());
  });

  for (const [name, allowed] of Object.entries(mayImport)) {
    it(`@tsvirt/${name} imports only ${allowed.length ? allowed.join(', ') : 'nothing of ours'}`, () => {
      const manifest = JSON.parse(readFileSync(path.join(packagesRoot, name, 'package.json'), 'utf8'));
      const declared = Object.keys(manifest.dependencies ?? {}).filter((d) => d.startsWith('@tsvirt/')).map((d) => d.slice(8));
      const declaredForTests = Object.keys(manifest.devDependencies ?? {}).filter((d) => d.startsWith('@tsvirt/')).map((d) => d.slice(8));
      const problems: string[] = [];
      for (const dependency of declared) if (!allowed.includes(dependency)) problems.push(`package.json depends on @tsvirt/${dependency}`);
      for (const dependency of declaredForTests) {
        if (!allowed.includes(dependency) && !testsMayAlsoImport.includes(dependency)) problems.push(`package.json devDepends on @tsvirt/${dependency}`);
      }
      const srcDir = path.join(packagesRoot, name, 'src');
      for (const file of sourceFiles(srcDir)) {
        const where = path.relative(packagesRoot, file);
        for (const specifier of importsOf(file)) {
          const ours = /^@tsvirt\/([a-z0-9-]+)/.exec(specifier)?.[1];
          if (ours !== undefined && ours !== name) {
            const permitted = allowed.includes(ours) || (isTest(file) && testsMayAlsoImport.includes(ours) && declaredForTests.includes(ours));
            if (!permitted) problems.push(`${where} imports ${specifier}`);
            else if (!declared.includes(ours) && !declaredForTests.includes(ours)) problems.push(`${where} imports ${specifier}, which package.json does not declare`);
          }
          if (specifier.startsWith('.')) {
            const target = path.resolve(path.dirname(file), specifier);
            if (!target.startsWith(srcDir + path.sep)) problems.push(`${where} reaches outside its package: ${specifier}`);
          }
        }
      }
      expect(problems).toEqual([]);
    });
  }
});
