import { TsvirtError } from '@tsvirt/interfaces';
import { ImageToolError } from '../errors.js';
import { type ImageFormat, isNbdUri, openImage } from '../open.js';
import { checkQcow2, type RepairMode } from '../qcow2/check.js';
import type { Qcow2CreateOptions } from '../qcow2/create.js';
import { Qcow2Backend } from '../qcow2/qcow2.js';
import { amendImage } from './amend.js';
import { imageInfo, type ImageInfo } from './info.js';
import { measureImage } from './measure.js';
import { mapImage } from './map.js';
import { commitImage, compareImages, convertImage, copyContents, createImage, type Progress, rebaseImage, resizeImage, snapshotImage } from './operations.js';
import { formatSize, parseSize } from './size.js';

const USAGE = `usage: tsvirt img <command> [options] ...   (qemu-img's commands and options)

  create [-q] [-f fmt] [-b backing -F backing_fmt] [-o options] filename [size]
  info [-U] [-f fmt] [--output=human|json] [--backing-chain] filename
  check [-q] [-U] [-f fmt] [--output=human|json] [-r leaks|all] filename
  convert [-p] [-c] [-n] [-U] [-f fmt] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] [-t cache] [-T src_cache] source target
  snapshot [-l | -a name | -c name | -d name] filename
  commit [-q] [-p] [-d] filename
  rebase [-p] [-u] -b backing_file [-F backing_fmt] filename
  resize [-q] [--shrink] filename [+|-]size
  map [-U] [-f fmt] [--output=human|json] filename
  measure [--output=human|json] [-O output_fmt] [-o options] (--size N | filename)
  amend -o compat=0.10|1.1,lazy_refcounts=on|off,size=N,refcount_bits=N,data_file=name,data_file_raw=off filename
  compare [-p] [-s] [-U] [-f fmt] [-F fmt] filename1 filename2

Formats: raw, qcow2; any filename may be an nbd:// or nbd+unix:// URI.
`;

/** Where a command's output goes. */
export interface CommandOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

interface Parsed {
  flags: Map<string, string | true>;
  positional: string[];
}

/** A small getopt: `valued` options take the next argument (or `--name=value`). */
function parse(argv: readonly string[], valued: readonly string[]): Parsed {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg : arg.slice(0, eq);
      if (eq >= 0) flags.set(name, arg.slice(eq + 1));
      else if (valued.includes(name)) {
        const value = argv[++i];
        if (value === undefined) throw new ImageToolError(`option ${name} needs a value`);
        flags.set(name, value);
      } else flags.set(name, true);
    } else if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      const name = arg.slice(0, 2);
      if (valued.includes(name)) {
        const value = arg.length > 2 ? arg.slice(2) : argv[++i];
        if (value === undefined) throw new ImageToolError(`option ${name} needs a value`);
        const previous = flags.get(name);
        // -o may repeat; the values join with commas as in qemu-img.
        flags.set(name, typeof previous === 'string' && name === '-o' ? `${previous},${value}` : value);
      } else {
        for (const letter of arg.slice(1)) flags.set(`-${letter}`, true);
      }
    } else {
      positional.push(arg);
    }
  }
  return { flags, positional };
}

function format(value: string | true | undefined): ImageFormat | undefined {
  if (value === undefined) return undefined;
  if (value === 'raw' || value === 'qcow2') return value;
  throw new ImageToolError(`Unknown file format '${String(value)}'`);
}

/** The cache modes qemu-img accepts for -t and -T. */
const CACHE_MODES = ['none', 'off', 'writeback', 'writethrough', 'directsync', 'unsafe'];

/** qemu-img's -U (--force-share): open read-only without refusing other users. */
function shared(flags: Map<string, string | true>): { forceShare: boolean } {
  return { forceShare: flags.has('-U') || flags.has('--force-share') };
}

function onOff(value: string): boolean {
  if (value === 'on' || value === 'true') return true;
  if (value === 'off' || value === 'false') return false;
  throw new ImageToolError(`expected on or off, got ${value}`);
}

/** `-o key=value,...` into creation options. */
function creationOptions(text: string | true | undefined): Partial<Qcow2CreateOptions> & { size?: number } {
  const options: Partial<Qcow2CreateOptions> & { size?: number } = {};
  if (typeof text !== 'string') return options;
  for (const pair of text.split(',').filter(Boolean)) {
    const [key, value = ''] = pair.split('=');
    switch (key) {
      case 'size': options.size = parseSize(value); break;
      case 'compat': if (value !== '0.10' && value !== '1.1' && value !== 'v2' && value !== 'v3') throw new ImageToolError(`Invalid compatibility level: '${value}'`); options.compat = value === '0.10' || value === 'v2' ? '0.10' : '1.1'; break;
      case 'cluster_size': options.clusterSize = parseSize(value); break;
      case 'refcount_bits': options.refcountBits = Number(value); break;
      case 'lazy_refcounts': options.lazyRefcounts = onOff(value); break;
      case 'extended_l2': options.extendedL2 = onOff(value); break;
      case 'compression_type': if (value !== 'zlib' && value !== 'zstd') throw new ImageToolError(`Invalid compression type '${value}'`); options.compressionType = value; break;
      case 'preallocation': if (value !== 'off' && value !== 'metadata' && value !== 'full' && value !== 'falloc') throw new ImageToolError(`Invalid preallocation mode: '${value}'`); options.preallocation = value; break;
      case 'backing_file': options.backingFile = value; break;
      case 'backing_fmt': options.backingFormat = value; break;
      case 'data_file': options.dataFile = value; break;
      case 'data_file_raw': options.dataFileRaw = onOff(value); break;
      default: throw new ImageToolError(`Invalid parameter '${key}'`);
    }
  }
  return options;
}

function progressPrinter(enabled: boolean, output: CommandOutput): Progress {
  if (!enabled) return () => {};
  let last = -1;
  return (fraction) => {
    const percent = Math.floor(fraction * 10000) / 100;
    if (percent === last) return;
    last = percent;
    output.stdout(`    (${percent.toFixed(2)}/100%)\r`);
    if (fraction >= 1) output.stdout('\n');
  };
}

function humanInfo(info: ImageInfo): string {
  const lines = [
    `image: ${info.filename}`,
    `file format: ${info.format}`,
    `virtual size: ${formatSize(info['virtual-size'])} (${info['virtual-size']} bytes)`,
    `disk size: ${formatSize(info['actual-size'])}`,
  ];
  if (info['cluster-size'] !== undefined) lines.push(`cluster_size: ${info['cluster-size']}`);
  if (info['backing-filename'] !== undefined) lines.push(`backing file: ${info['backing-filename']}`);
  if (info['backing-filename-format'] !== undefined) lines.push(`backing file format: ${info['backing-filename-format']}`);
  if (info.snapshots?.length) {
    lines.push('Snapshot list:', 'ID        TAG');
    for (const snapshot of info.snapshots) lines.push(`${snapshot.id.padEnd(10)}${snapshot.name}`);
  }
  const specific = info['format-specific'];
  if (specific) {
    lines.push('Format specific information:');
    for (const [key, value] of Object.entries(specific.data)) lines.push(`    ${key.replace(/-/g, ' ')}: ${String(value)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `tsvirt img <command> ...`: qemu-img's commands and arguments, its JSON
 * output and exit codes. Returns the exit code; never throws.
 */
export async function runImgCommand(argv: readonly string[], output: CommandOutput): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'create': {
        const { flags, positional } = parse(rest, ['-f', '-b', '-F', '-o']);
        const [filename, sizeText] = positional;
        if (filename === undefined) throw new ImageToolError('Expecting image file name');
        const options = creationOptions(flags.get('-o'));
        const backingFile = (flags.get('-b') as string | undefined) ?? options.backingFile;
        const backingFormat = (flags.get('-F') as string | undefined) ?? options.backingFormat;
        const size = sizeText !== undefined ? parseSize(sizeText) : options.size;
        const image = await createImage(filename, {
          ...options,
          format: format(flags.get('-f')) ?? 'raw',
          ...(size !== undefined ? { size } : {}),
          ...(backingFile !== undefined ? { backingFile } : {}),
          ...(backingFormat !== undefined ? { backingFormat } : {}),
        });
        await image.close();
        if (!flags.has('-q')) output.stdout(`Formatting '${filename}', fmt=${format(flags.get('-f')) ?? 'raw'} size=${image.size}\n`);
        return 0;
      }
      case 'info': {
        const { flags, positional } = parse(rest, ['-f', '--output']);
        const filename = positional[0];
        if (filename === undefined) throw new ImageToolError('Expecting one image file name');
        const fmt = format(flags.get('-f'));
        const infos = await imageInfo(filename, { backingChain: flags.has('--backing-chain'), ...shared(flags), ...(fmt ? { format: fmt } : {}) });
        if (flags.get('--output') === 'json') output.stdout(`${JSON.stringify(flags.has('--backing-chain') ? infos : infos[0], null, 4)}\n`);
        else output.stdout(infos.map(humanInfo).join('\n'));
        return 0;
      }
      case 'check': {
        const { flags, positional } = parse(rest, ['-f', '--output', '-r']);
        const filename = positional[0];
        if (filename === undefined) throw new ImageToolError('Expecting one image file name');
        const repair = flags.get('-r');
        if (repair !== undefined && repair !== 'leaks' && repair !== 'all') throw new ImageToolError(`Unknown option value for -r (expecting 'leaks' or 'all'): ${String(repair)}`);
        const opened = await openImage(filename, {
          readOnly: repair === undefined,
          forRepair: repair !== undefined,
          ...shared(flags),
          // As qemu-img check: a missing backing file or a backing loop means the image cannot be checked (status 1).
          ...(format(flags.get('-f')) ? { format: format(flags.get('-f'))! } : {}),
        });
        try {
          if (!(opened.backend instanceof Qcow2Backend)) {
            output.stderr(`qemu-img: This image format does not support checks\n`);
            return 63;
          }
          const report = await checkQcow2(opened.backend, repair === undefined ? {} : { repair: repair as RepairMode });
          const remainingCorruptions = report.corruptions - report.corruptionsFixed;
          const remainingLeaks = report.leaks - report.leaksFixed;
          if (flags.get('--output') === 'json') {
            const json: Record<string, unknown> = {
              'image-end-offset': report.imageEndOffset,
              'total-clusters': report.totalClusters,
              'check-errors': report.checkErrors,
            };
            // qemu-img leaves out the figures that are zero.
            if (report.allocatedClusters) json['allocated-clusters'] = report.allocatedClusters;
            json.filename = filename;
            json.format = 'qcow2';
            if (report.fragmentedClusters) json['fragmented-clusters'] = report.fragmentedClusters;
            if (report.compressedClusters) json['compressed-clusters'] = report.compressedClusters;
            if (remainingCorruptions) json.corruptions = remainingCorruptions;
            if (remainingLeaks) json.leaks = remainingLeaks;
            if (report.corruptionsFixed) json['corruptions-fixed'] = report.corruptionsFixed;
            if (report.leaksFixed) json['leaks-fixed'] = report.leaksFixed;
            output.stdout(`${JSON.stringify(json, null, 4)}\n`);
          } else if (!flags.has('-q')) {
            for (const message of report.messages) output.stderr(`${message}\n`);
            if (remainingCorruptions === 0 && remainingLeaks === 0 && report.checkErrors === 0) output.stdout('No errors were found on the image.\n');
            if (remainingCorruptions) output.stdout(`\n${remainingCorruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n`);
            if (remainingLeaks) output.stdout(`\n${remainingLeaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n`);
            const percent = (part: number) => (report.totalClusters ? ((part * 100) / report.totalClusters).toFixed(2) : '0.00');
            output.stdout(`${report.allocatedClusters}/${report.totalClusters} = ${percent(report.allocatedClusters)}% allocated, ${percent(report.fragmentedClusters)}% fragmented, ${percent(report.compressedClusters)}% compressed clusters\nImage end offset: ${report.imageEndOffset}\n`);
          }
          if (report.checkErrors) return 1;
          if (remainingCorruptions) return 2;
          if (remainingLeaks) return 3;
          return 0;
        } finally {
          await opened.backend.close();
        }
      }
      case 'convert': {
        const { flags, positional } = parse(rest, ['-f', '-O', '-o', '-S', '-B', '-F', '-t', '-T']);
        if (positional.length !== 2) throw new ImageToolError('Expecting a source and a target file name');
        // Cache modes only tune QEMU's host I/O; they are checked and otherwise ignored here.
        for (const [flag, what] of [['-t', 'cache'], ['-T', 'source cache']] as const) {
          const mode = flags.get(flag);
          if (mode !== undefined && !CACHE_MODES.includes(String(mode))) throw new ImageToolError(`Invalid ${what} option: ${String(mode)}`);
        }
        const [sourcePath, targetPath] = positional as [string, string];
        const fmt = format(flags.get('-f'));
        const source = await openImage(sourcePath, { readOnly: true, ...shared(flags), ...(fmt ? { format: fmt } : {}) });
        try {
          const create = creationOptions(flags.get('-o'));
          const sparse = flags.get('-S');
          if (isNbdUri(targetPath)) {
            // An NBD target exists already; its contents are overwritten (zero runs written as zeroes).
            const target = await openImage(targetPath);
            try {
              if (target.backend.size < source.backend.size) throw new ImageToolError('the NBD export is smaller than the source');
              await copyContents(source.backend, target.backend, { sparseSize: 0, onProgress: progressPrinter(flags.has('-p'), output) });
            } finally {
              await target.backend.close();
            }
            return 0;
          }
          const backingFile = flags.get('-B') ?? create.backingFile;
          const backingFormat = flags.get('-F') ?? create.backingFormat;
          await convertImage(source.backend, targetPath, {
            outputFormat: format(flags.get('-O')) ?? 'raw',
            compress: flags.has('-c'),
            create,
            noCreate: flags.has('-n'),
            ...(typeof backingFile === 'string' ? { backingFile } : {}),
            ...(typeof backingFormat === 'string' ? { backingFormat } : {}),
            ...(typeof sparse === 'string' ? { sparseSize: parseSize(sparse) } : {}),
            onProgress: progressPrinter(flags.has('-p'), output),
          });
        } finally {
          await source.backend.close();
        }
        return 0;
      }
      case 'snapshot': {
        const { flags, positional } = parse(rest, ['-a', '-c', '-d', '-f']);
        const filename = positional[0];
        if (filename === undefined) throw new ImageToolError('Expecting one image file name');
        if (flags.has('-l')) {
          const list = await snapshotImage(filename, 'list');
          output.stdout('Snapshot list:\nID        TAG               VM SIZE                DATE     VM CLOCK\n');
          for (const snapshot of list) {
            const date = new Date(snapshot.createdAt).toISOString().replace('T', ' ').slice(0, 19);
            output.stdout(`${snapshot.id.padEnd(10)}${snapshot.name.padEnd(18)}${formatSize(snapshot.vmStateSize).padStart(7)} ${date} 00:00:00.000\n`);
          }
          return 0;
        }
        for (const [flag, action] of [['-c', 'create'], ['-a', 'apply'], ['-d', 'delete']] as const) {
          const name = flags.get(flag);
          if (typeof name === 'string') {
            await snapshotImage(filename, action, name);
            return 0;
          }
        }
        throw new ImageToolError('snapshot needs one of -l, -c, -a, -d');
      }
      case 'commit': {
        const { flags, positional } = parse(rest, ['-f']);
        const filename = positional[0];
        if (filename === undefined) throw new ImageToolError('Expecting one image file name');
        await commitImage(filename, { keep: flags.has('-d'), onProgress: progressPrinter(flags.has('-p'), output) });
        if (!flags.has('-q')) output.stdout('Image committed.\n');
        return 0;
      }
      case 'rebase': {
        const { flags, positional } = parse(rest, ['-f', '-b', '-F']);
        const filename = positional[0];
        if (filename === undefined) throw new ImageToolError('Expecting one image file name');
        const backing = flags.get('-b');
        if (backing === undefined) throw new ImageToolError('Must specify backing file (-b) or use unsafe mode (-u)');
        const backingFormat = format(flags.get('-F'));
        await rebaseImage(filename, {
          backingFile: backing === '' ? undefined : String(backing),
          unsafe: flags.has('-u'),
          ...(backingFormat ? { backingFormat } : {}),
          onProgress: progressPrinter(flags.has('-p'), output),
        });
        return 0;
      }
      case 'resize': {
        const { flags, positional } = parse(rest, ['-f']);
        const [filename, sizeText] = positional;
        if (filename === undefined || sizeText === undefined) throw new ImageToolError('Expecting image file name and size');
        let size: number;
        if (sizeText.startsWith('+') || sizeText.startsWith('-')) {
          const opened = await openImage(filename, { readOnly: true, backing: false });
          const current = opened.backend.size;
          await opened.backend.close();
          size = current + (sizeText.startsWith('+') ? 1 : -1) * parseSize(sizeText.slice(1));
        } else {
          size = parseSize(sizeText);
        }
        await resizeImage(filename, size, { shrink: flags.has('--shrink') });
        if (!flags.has('-q')) output.stdout('Image resized.\n');
        return 0;
      }
      case 'map': {
        const { flags, positional } = parse(rest, ['-f', '--output']);
        const filename = positional[0];
        if (filename === undefined) throw new ImageToolError('Expecting one image file name');
        const fmt = format(flags.get('-f'));
        const opened = await openImage(filename, { readOnly: true, ...shared(flags), ...(fmt ? { format: fmt } : {}) });
        try {
          const entries = await mapImage(opened);
          if (flags.get('--output') === 'json') {
            output.stdout(`[${entries.map((entry) => `{ ${Object.entries(entry).map(([key, value]) => `"${key}": ${JSON.stringify(value)}`).join(', ')}}`).join(',\n')}]\n`);
          } else {
            output.stdout(`${'Offset'.padEnd(20)}${'Length'.padEnd(20)}${'Mapped to'.padEnd(20)}File\n`);
            for (const entry of entries.filter((item) => item.data && item.offset !== undefined)) {
              output.stdout(`${`0x${entry.start.toString(16)}`.padEnd(20)}${`0x${entry.length.toString(16)}`.padEnd(20)}${`0x${entry.offset!.toString(16)}`.padEnd(20)}${filename}\n`);
            }
          }
          return 0;
        } finally {
          await opened.backend.close();
        }
      }
      case 'compare': {
        const { flags, positional } = parse(rest, ['-f', '-F']);
        if (positional.length !== 2) throw new ImageToolError('Expecting two image file names');
        const first = await openImage(positional[0]!, { readOnly: true, ...shared(flags), ...(format(flags.get('-f')) ? { format: format(flags.get('-f'))! } : {}) });
        try {
          const second = await openImage(positional[1]!, { readOnly: true, ...shared(flags), ...(format(flags.get('-F')) ? { format: format(flags.get('-F'))! } : {}) });
          try {
            if (flags.has('-s') && first.backend.size !== second.backend.size) {
              output.stdout('Strict mode: Image size mismatch!\n');
              return 1;
            }
            const differs = await compareImages(first.backend, second.backend, progressPrinter(flags.has('-p'), output));
            if (differs === undefined) {
              output.stdout('Images are identical.\n');
              return 0;
            }
            // qemu-img names the 512-byte sector the difference lies in.
            output.stdout(`Content mismatch at offset ${differs - (differs % 512)}!\n`);
            return 1;
          } finally {
            await second.backend.close();
          }
        } finally {
          await first.backend.close();
        }
      }
      case 'measure': {
        const { flags, positional } = parse(rest, ['-f', '-O', '-o', '--size', '--output']);
        const options = creationOptions(flags.get('-o'));
        const target = {
          format: format(flags.get('-O')) ?? 'raw',
          ...(options.clusterSize !== undefined ? { clusterSize: options.clusterSize } : {}),
          ...(options.refcountBits !== undefined ? { refcountBits: options.refcountBits } : {}),
          ...(options.extendedL2 !== undefined ? { extendedL2: options.extendedL2 } : {}),
        };
        const sizeText = flags.get('--size');
        let result;
        let fromImage = false;
        if (typeof sizeText === 'string') result = await measureImage(target, { size: parseSize(sizeText) });
        else {
          const filename = positional[0];
          if (filename === undefined) throw new ImageToolError('Either --size N or one filename must be specified.');
          const fmt = format(flags.get('-f'));
          const source = await openImage(filename, { readOnly: true, ...shared(flags), ...(fmt ? { format: fmt } : {}) });
          fromImage = source.format === 'qcow2';
          try {
            result = await measureImage(target, { source: source.backend });
          } finally {
            await source.backend.close();
          }
        }
        if (flags.get('--output') === 'json') {
          const json: Record<string, number> = {};
          // qemu-img reports bitmap space when both sides are qcow2 (this library copies none).
          if (fromImage && target.format === 'qcow2') json.bitmaps = 0;
          json.required = result.required;
          json['fully-allocated'] = result.fullyAllocated;
          output.stdout(`${JSON.stringify(json, null, 4)}\n`);
        } else {
          output.stdout(`required size: ${result.required}\nfully allocated size: ${result.fullyAllocated}\n`);
        }
        return 0;
      }
      case 'amend': {
        const { flags, positional } = parse(rest, ['-f', '-o']);
        const filename = positional[0];
        if (filename === undefined) throw new ImageToolError('Expecting one image file name');
        const options = creationOptions(flags.get('-o'));
        if (options.backingFile !== undefined || options.backingFormat !== undefined) {
          throw new ImageToolError("Cannot amend the backing file\nYou can use 'qemu-img rebase' instead.");
        }
        const creationOnly = { clusterSize: 'cluster_size', extendedL2: 'extended_l2', compressionType: 'compression_type', preallocation: 'preallocation' } as const;
        for (const [key, name] of Object.entries(creationOnly)) {
          if (key in options) throw new ImageToolError(`Invalid parameter '${name}'\nThis option is only supported for image creation`);
        }
        await amendImage(filename, {
          ...(options.compat !== undefined ? { compat: options.compat } : {}),
          ...(options.lazyRefcounts !== undefined ? { lazyRefcounts: options.lazyRefcounts } : {}),
          ...(options.size !== undefined ? { size: options.size } : {}),
          ...(options.refcountBits !== undefined ? { refcountBits: options.refcountBits } : {}),
          ...(options.dataFile !== undefined ? { dataFile: options.dataFile } : {}),
          ...(options.dataFileRaw !== undefined ? { dataFileRaw: options.dataFileRaw } : {}),
        });
        return 0;
      }
      case 'help':
      case '--help':
      case '-h':
        output.stdout(USAGE);
        return 0;
      default:
        output.stderr(`tsvirt img: unknown command ${JSON.stringify(command ?? '')} (try 'tsvirt img --help')\n`);
        return 1;
    }
  } catch (error) {
    // Every failure an image, an argument or the host can cause is a TsvirtError or a system error; anything else is a bug in tsvirt, and says so.
    const expected = error instanceof TsvirtError || (error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string');
    const message = expected ? (error as Error).message : `internal error (a tsvirt bug, please report it): ${error instanceof Error ? error.message : String(error)}`;
    output.stderr(`tsvirt img: ${message}\n`);
    return command === 'compare' ? 2 : 1;
  }
}
