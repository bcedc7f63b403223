import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { ImageToolError } from '../errors.js';

/** A storage pool as libvirt's pool XML describes it (the part this library models). */
export interface PoolDefinition {
  type: 'dir' | 'fs' | 'netfs';
  name: string;
  uuid: string;
  /** Where the pool's volumes live (for fs/netfs: the mount point). */
  targetPath: string;
  /** fs: the device; netfs: host and directory. Recorded, not mounted by this library. */
  source?: { device?: string; host?: string; dir?: string; format?: string };
}

/** A volume as libvirt's volume XML describes it. */
export interface VolumeDefinition {
  name: string;
  /** Guest-visible size in bytes. */
  capacity: number;
  /** Bytes to preallocate; below capacity means thin (the default, 0). */
  allocation?: number;
  format: 'raw' | 'qcow2';
  backingStore?: { path: string; format: 'raw' | 'qcow2' };
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false, trimValues: true });
const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@', format: true, indentBy: '  ', suppressEmptyNode: true });

const unitScale: Record<string, number> = {
  b: 1, bytes: 1,
  kb: 1e3, k: 2 ** 10, kib: 2 ** 10,
  mb: 1e6, m: 2 ** 20, mib: 2 ** 20,
  gb: 1e9, g: 2 ** 30, gib: 2 ** 30,
  tb: 1e12, t: 2 ** 40, tib: 2 ** 40,
  pb: 1e15, p: 2 ** 50, pib: 2 ** 50,
};

type Node = Record<string, unknown>;

function child(node: unknown, name: string): Node | undefined {
  if (typeof node !== 'object' || node === null) return undefined;
  const value = (node as Node)[name];
  if (Array.isArray(value)) throw new ImageToolError(`element <${name}> appears more than once`);
  if (value === undefined) return undefined;
  return typeof value === 'object' && value !== null ? (value as Node) : { '#text': String(value) };
}

function text(node: unknown, name: string): string | undefined {
  const element = child(node, name);
  if (element === undefined) return undefined;
  const value = element['#text'];
  return value === undefined ? '' : String(value);
}

function required(node: unknown, name: string, where: string): string {
  const value = text(node, name);
  if (value === undefined || value === '') throw new ImageToolError(`${where} needs <${name}>`);
  return value;
}

/** A `<capacity unit='GiB'>10</capacity>` element in bytes. */
function scaled(node: unknown, name: string): number | undefined {
  const element = child(node, name);
  if (element === undefined) return undefined;
  const value = String(element['#text'] ?? '');
  const unit = String(element['@unit'] ?? 'bytes').toLowerCase();
  const scale = unitScale[unit];
  if (scale === undefined) throw new ImageToolError(`unknown unit ${JSON.stringify(unit)} in <${name}>`);
  if (!/^\d+$/.test(value)) throw new ImageToolError(`<${name}> must be a whole number, got ${JSON.stringify(value)}`);
  const bytes = Number(value) * scale;
  if (!Number.isSafeInteger(bytes)) throw new ImageToolError(`<${name}> is too large`);
  return bytes;
}

function checkName(name: string, what: string): string {
  if (name.includes('/') || name === '.' || name === '..' || name.length > 255) throw new ImageToolError(`invalid ${what} name ${JSON.stringify(name)}`);
  return name;
}

function format(value: string | undefined): 'raw' | 'qcow2' {
  const chosen = value ?? 'raw';
  if (chosen !== 'raw' && chosen !== 'qcow2') throw new ImageToolError(`volume format ${JSON.stringify(chosen)} is not supported`);
  return chosen;
}

export function parsePoolXml(xml: string, newUuid: () => string): PoolDefinition {
  const root = child(parser.parse(xml), 'pool');
  if (root === undefined) throw new ImageToolError('expected a <pool> element');
  const type = String(root['@type'] ?? '');
  if (type !== 'dir' && type !== 'fs' && type !== 'netfs') throw new ImageToolError(`pool type ${JSON.stringify(type)} is not supported (dir, fs, netfs)`);
  const target = child(root, 'target');
  const definition: PoolDefinition = {
    type,
    name: checkName(required(root, 'name', '<pool>'), 'pool'),
    uuid: text(root, 'uuid') || newUuid(),
    targetPath: required(target, 'path', '<target>'),
  };
  const source = child(root, 'source');
  if (source) {
    const device = child(source, 'device')?.['@path'];
    const host = child(source, 'host')?.['@name'];
    const dir = child(source, 'dir')?.['@path'];
    const sourceFormat = child(source, 'format')?.['@type'];
    definition.source = {
      ...(device !== undefined ? { device: String(device) } : {}),
      ...(host !== undefined ? { host: String(host) } : {}),
      ...(dir !== undefined ? { dir: String(dir) } : {}),
      ...(sourceFormat !== undefined ? { format: String(sourceFormat) } : {}),
    };
  }
  return definition;
}

export function poolToXml(definition: PoolDefinition, figures?: { capacity: number; allocation: number; available: number }): string {
  const source: Node = {};
  if (definition.source?.device) source.device = { '@path': definition.source.device };
  if (definition.source?.host) source.host = { '@name': definition.source.host };
  if (definition.source?.dir) source.dir = { '@path': definition.source.dir };
  if (definition.source?.format) source.format = { '@type': definition.source.format };
  const pool: Node = { '@type': definition.type, name: definition.name, uuid: definition.uuid };
  if (figures) {
    pool.capacity = { '@unit': 'bytes', '#text': String(figures.capacity) };
    pool.allocation = { '@unit': 'bytes', '#text': String(figures.allocation) };
    pool.available = { '@unit': 'bytes', '#text': String(figures.available) };
  }
  pool.source = source;
  pool.target = { path: definition.targetPath };
  return builder.build({ pool }) as string;
}

export function parseVolumeXml(xml: string): VolumeDefinition {
  const root = child(parser.parse(xml), 'volume');
  if (root === undefined) throw new ImageToolError('expected a <volume> element');
  const capacity = scaled(root, 'capacity');
  if (capacity === undefined) throw new ImageToolError('<volume> needs <capacity>');
  const allocation = scaled(root, 'allocation');
  const target = child(root, 'target');
  const definition: VolumeDefinition = {
    name: checkName(required(root, 'name', '<volume>'), 'volume'),
    capacity,
    format: format(child(target, 'format')?.['@type'] as string | undefined),
    ...(allocation !== undefined ? { allocation } : {}),
  };
  const backing = child(root, 'backingStore');
  if (backing) {
    definition.backingStore = { path: required(backing, 'path', '<backingStore>'), format: format(child(backing, 'format')?.['@type'] as string | undefined) };
  }
  return definition;
}

export function volumeToXml(definition: VolumeDefinition & { path: string; allocation: number }): string {
  const volume: Node = {
    '@type': 'file',
    name: definition.name,
    key: definition.path,
    capacity: { '@unit': 'bytes', '#text': String(definition.capacity) },
    allocation: { '@unit': 'bytes', '#text': String(definition.allocation) },
    target: { path: definition.path, format: { '@type': definition.format } },
  };
  if (definition.backingStore) volume.backingStore = { path: definition.backingStore.path, format: { '@type': definition.backingStore.format } };
  return builder.build({ volume }) as string;
}
