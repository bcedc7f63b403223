/**
 * The guest kit: `pnpm guests [--arch amd64|i386|all] [--modules a,b]`
 * builds boot images into .guests/<arch>/ from Debian's packages — the
 * current stock kernel (linux-image-amd64 / linux-image-686, resolved to the
 * real package, since the versions change every few weeks) and a static
 * busybox — with the init in init.sh. Kernel modules named with --modules
 * (and what they depend on, from modules.dep) are loaded at boot.
 *
 * Output per architecture: vmlinuz, initramfs.cpio.gz, manifest.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { writeCpio, type CpioEntry } from './cpio.js';

export type GuestArch = 'amd64' | 'i386';

const flavours: Record<GuestArch, string> = { amd64: 'amd64', i386: '686' };
const root = fileURLToPath(new URL('../../', import.meta.url));
export const guestsDir = path.join(root, '.guests');

export interface GuestManifest {
  /** Set on a default build; `existingGuest` rebuilds anything else. */
  readonly kitVersion?: number;
  readonly arch: GuestArch;
  readonly kernelPackage: string;
  readonly kernelVersion: string;
  readonly busyboxVersion: string;
  readonly modules: string[];
  readonly kernel: string;
  readonly initramfs: string;
  readonly append: string;
}

function run(command: string, args: string[], cwd?: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ensureArchitecture(arch: GuestArch): void {
  const native = run('dpkg', ['--print-architecture']).trim();
  if (arch === native) return;
  const foreign = run('dpkg', ['--print-foreign-architectures']).split('\n');
  if (foreign.includes(arch)) return;
  // As scripts/install-system-deps.sh does: root runs it, anyone else through sudo.
  const asRoot = (command: string, args: string[]): string => (process.getuid?.() === 0 ? run(command, args) : run('sudo', ['-n', command, ...args]));
  try {
    asRoot('dpkg', ['--add-architecture', arch]);
  } catch {
    throw new Error(`the ${arch} guest needs Debian's ${arch} package lists: run as root, or 'sudo dpkg --add-architecture ${arch} && sudo apt-get update'`);
  }
  try {
    asRoot('apt-get', ['update', '-qq']);
  } catch (error) {
    // A mirror in mid-sync fails one index; the others still resolve the packages.
    console.warn(`apt-get update reported a problem, going on with the lists it has: ${String(error).split('\n')[0]}`);
  }
}

/** linux-image-amd64 → linux-image-6.1.0-56-amd64 (the metapackage's dependency). */
function resolveKernelPackage(arch: GuestArch): string {
  const meta = `linux-image-${flavours[arch]}:${arch}`;
  const depends = /Depends: (linux-image-[^\s:]+)/.exec(run('apt-cache', ['depends', meta]))?.[1];
  if (depends === undefined) throw new Error(`cannot resolve ${meta}: is 'apt-get update' done for ${arch}?`);
  return depends;
}

function download(pkg: string, arch: GuestArch, cacheDir: string): string {
  const existing = readdirSync(cacheDir).find((file) => file.startsWith(`${pkg.replace(/:.*/, '')}_`) && file.endsWith(`_${arch}.deb`));
  if (existing !== undefined) return path.join(cacheDir, existing);
  run('apt-get', ['download', '-qq', `${pkg}:${arch}`], cacheDir);
  const file = readdirSync(cacheDir).find((name) => name.startsWith(`${pkg}_`) && name.endsWith(`_${arch}.deb`));
  if (file === undefined) throw new Error(`apt-get download ${pkg}:${arch} left no .deb`);
  return path.join(cacheDir, file);
}

function extract(deb: string, into: string): void {
  mkdirSync(into, { recursive: true });
  run('dpkg-deb', ['-x', deb, into]);
}

/** The `depends=` list in a module's .modinfo strings (modules.dep is made by depmod at install time, so the package lacks it). */
export function moduleDependencies(ko: Uint8Array): string[] {
  const text = Buffer.from(ko.buffer, ko.byteOffset, ko.byteLength).toString('latin1');
  const match = /\0depends=([^\0]*)\0/.exec(text);
  return match === null ? [] : match[1]!.split(',').filter(Boolean);
}

/** All module files under `dir`, by module name (dashes as underscores). */
function indexModules(dir: string, prefix = ''): Map<string, string> {
  const found = new Map<string, string>();
  for (const entry of readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) for (const [name, file] of indexModules(dir, relative)) found.set(name, file);
    else if (entry.name.endsWith('.ko')) found.set(entry.name.slice(0, -3).replace(/-/g, '_'), relative);
  }
  return found;
}

/** Modules named (e.g. virtio_blk) plus their dependencies, in load order, as paths relative to `modulesRoot`. */
export function resolveModules(wanted: readonly string[], files: ReadonlyMap<string, string>, read: (file: string) => Uint8Array): string[] {
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string): void => {
    const file = files.get(name.replace(/-/g, '_'));
    if (file === undefined) throw new Error(`no kernel module named ${name} in this kernel (is it built in?)`);
    if (order.includes(file) || visiting.has(file)) return;
    visiting.add(file);
    for (const dependency of moduleDependencies(read(file))) visit(dependency);
    order.push(file);
  };
  for (const name of wanted) visit(name);
  return order;
}

/**
 * What every guest loads unless told otherwise: the virtio drivers tsvirt's
 * devices need (PCI transport, block, network, entropy, console, balloon) and
 * ext4 (with crc32c, which ext4's checksums ask the crypto API for rather than
 * depend on). Their dependencies come from the modules' own `depends=`.
 */
export const DEFAULT_MODULES = ['virtio_pci', 'virtio_mmio', 'virtio_blk', 'virtio_net', 'virtio-rng', 'virtio_console', 'virtio_balloon', 'crc32c_generic', 'ext4'] as const;
/**
 * Modules a default build carries in /lib/modules without loading them: a
 * test loads one when it has plugged its device (ib700wdt would otherwise
 * take /dev/watchdog on every boot, since the board cannot be probed).
 */
export const ON_DEMAND_MODULES = ['i6300esb', 'ib700wdt'] as const;
/** Bumped when what a default build holds changes, so an older build in .guests/ is rebuilt. */
const KIT_VERSION = 3;

/** The guest kit's images for `arch` if .guests/ has them, built by this kit version with the default modules. */
export function existingGuest(arch: GuestArch): GuestManifest | undefined {
  const manifestPath = path.join(guestsDir, arch, 'manifest.json');
  if (!existsSync(manifestPath)) return undefined;
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as GuestManifest;
  if (manifest.kitVersion !== KIT_VERSION) return undefined;
  return existsSync(manifest.kernel) && existsSync(manifest.initramfs) ? manifest : undefined;
}

export function buildGuest(arch: GuestArch, modules: readonly string[] = DEFAULT_MODULES): GuestManifest {
  ensureArchitecture(arch);
  const work = path.join(guestsDir, 'cache', arch);
  mkdirSync(work, { recursive: true });
  const kernelPackage = resolveKernelPackage(arch);
  const kernelDeb = download(kernelPackage, arch, work);
  const busyboxDeb = download('busybox-static', arch, work);
  const tree = path.join(work, 'tree');
  rmSync(tree, { recursive: true, force: true });
  extract(kernelDeb, tree);
  extract(busyboxDeb, tree);

  const kernelVersion = kernelPackage.replace(/^linux-image-/, '');
  const modulesRoot = [path.join(tree, 'lib/modules', kernelVersion), path.join(tree, 'usr/lib/modules', kernelVersion)].find(existsSync);
  if (modulesRoot === undefined) throw new Error(`no modules directory for ${kernelVersion} in ${kernelDeb}`);
  const moduleIndex = indexModules(path.join(modulesRoot, 'kernel'));
  const resolve = (names: readonly string[]) => (names.length === 0 ? [] : resolveModules(names, moduleIndex, (file) => readFileSync(path.join(modulesRoot, 'kernel', file))));
  const moduleFiles = resolve(modules);
  const onDemand = modules === DEFAULT_MODULES ? resolve(ON_DEMAND_MODULES).filter((module) => !moduleFiles.includes(module)) : [];

  const entries: CpioEntry[] = ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'root', 'lib', 'lib/modules'].map((dir) => ({ kind: 'directory', path: dir }));
  entries.push({ kind: 'device', path: 'dev/console', character: true, major: 5, minor: 1 });
  entries.push({ kind: 'file', path: 'bin/busybox', data: readFileSync(path.join(tree, 'bin/busybox')), mode: 0o755 });
  entries.push({ kind: 'file', path: 'init', data: readFileSync(fileURLToPath(new URL('./init.sh', import.meta.url))), mode: 0o755 });
  const loaded: string[] = [];
  for (const module of moduleFiles) {
    const target = `lib/modules/${path.basename(module)}`;
    entries.push({ kind: 'file', path: target, data: readFileSync(path.join(modulesRoot, 'kernel', module)) });
    loaded.push(`/${target}`);
  }
  if (loaded.length > 0) entries.push({ kind: 'file', path: 'etc/modules', data: new TextEncoder().encode(`${loaded.join('\n')}\n`) });
  for (const module of onDemand) entries.push({ kind: 'file', path: `lib/modules/${path.basename(module)}`, data: readFileSync(path.join(modulesRoot, 'kernel', module)) });

  const out = path.join(guestsDir, arch);
  mkdirSync(out, { recursive: true });
  const vmlinuz = readdirSync(path.join(tree, 'boot')).find((name) => name.startsWith('vmlinuz-'));
  if (vmlinuz === undefined) throw new Error(`no /boot/vmlinuz-* in ${kernelDeb}`);
  writeFileSync(path.join(out, 'vmlinuz'), readFileSync(path.join(tree, 'boot', vmlinuz)));
  writeFileSync(path.join(out, 'initramfs.cpio.gz'), gzipSync(writeCpio(entries), { level: 9 }));
  const manifest: GuestManifest = {
    kitVersion: modules === DEFAULT_MODULES ? KIT_VERSION : undefined,
    arch,
    kernelPackage,
    kernelVersion,
    busyboxVersion: decodeURIComponent(/_([^_]+)_/.exec(path.basename(busyboxDeb))?.[1] ?? 'unknown'),
    modules: moduleFiles.map((module) => path.basename(module)),
    kernel: path.join(out, 'vmlinuz'),
    initramfs: path.join(out, 'initramfs.cpio.gz'),
    append: 'console=ttyS0 panic=-1 quiet',
  };
  writeFileSync(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(tree, { recursive: true, force: true });
  return manifest;
}

function parseArguments(argv: readonly string[]): { arches: GuestArch[]; modules: readonly string[] } {
  let arches: GuestArch[] = ['amd64', 'i386'];
  let modules: readonly string[] = DEFAULT_MODULES;
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i]!;
    const value = argv[i + 1];
    if (argument === '--arch' && value !== undefined) {
      if (value !== 'amd64' && value !== 'i386' && value !== 'all') throw new Error(`--arch takes amd64, i386 or all, not ${value}`);
      arches = value === 'all' ? ['amd64', 'i386'] : [value];
      i++;
    } else if (argument === '--modules' && value !== undefined) {
      modules = value === 'none' ? [] : value.split(',').filter(Boolean);
      i++;
    } else {
      throw new Error(`unknown argument ${argument}; usage: pnpm guests [--arch amd64|i386|all] [--modules name,name|none]`);
    }
  }
  return { arches, modules };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  try {
    const { arches, modules } = parseArguments(process.argv.slice(2));
    for (const arch of arches) {
      const manifest = buildGuest(arch, modules);
      console.log(`${arch}: ${manifest.kernelPackage}, busybox ${manifest.busyboxVersion}, ${manifest.modules.length} module(s) -> ${path.relative(process.cwd(), path.dirname(manifest.kernel))}`);
    }
  } catch (error) {
    console.error(`pnpm guests: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
