import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canResize } from '@tsvirt/interfaces';
import { ImageToolError } from '../errors.js';
import { NodeImageFile } from '../image-file.js';
import { openImage } from '../open.js';
import { createQcow2 } from '../qcow2/create.js';
import { Qcow2Backend } from '../qcow2/qcow2.js';
import { copyContents, createImage } from '../tools/operations.js';
import { parsePoolXml, parseVolumeXml, type PoolDefinition, poolToXml, type VolumeDefinition, volumeToXml } from './xml.js';

export type PoolState = 'inactive' | 'running';

/** `virsh pool-info`'s figures. */
export interface PoolInfo {
  name: string;
  uuid: string;
  state: PoolState;
  persistent: boolean;
  capacity: number;
  allocation: number;
  available: number;
}

/** `virsh vol-info`'s figures plus what the image says. */
export interface VolumeInfo {
  name: string;
  path: string;
  type: 'file';
  format: 'raw' | 'qcow2';
  /** Guest-visible size. */
  capacity: number;
  /** Bytes the host really holds (thin volumes hold less than capacity). */
  allocation: number;
  backingStore?: string;
  backingFormat?: string;
}

/**
 * Storage pools in libvirt's model: named, persistent definitions (pool XML
 * files in `configDir`) of directories holding volumes. One object per
 * management process; nothing is global.
 */
export class StorageConnection {
  private readonly active = new Set<string>();

  constructor(private readonly configDir: string) {}

  /** Defines (or redefines) a persistent pool from libvirt pool XML. */
  async definePool(xml: string): Promise<StoragePool> {
    const definition = parsePoolXml(xml, randomUUID);
    await mkdir(this.configDir, { recursive: true });
    await writeFile(join(this.configDir, `${definition.name}.xml`), poolToXml(definition));
    return new StoragePool(definition, this.active);
  }

  async undefinePool(name: string): Promise<void> {
    if (this.active.has(name)) throw new ImageToolError(`pool ${name} is still active`);
    await rm(join(this.configDir, `${name}.xml`));
  }

  async listPools(): Promise<string[]> {
    const names = await readdir(this.configDir).catch(() => [] as string[]);
    return names.filter((name) => name.endsWith('.xml')).map((name) => name.slice(0, -4)).sort();
  }

  async lookupPool(name: string): Promise<StoragePool> {
    const xml = await readFile(join(this.configDir, `${name}.xml`), 'utf8').catch(() => {
      throw new ImageToolError(`Storage pool not found: no storage pool with matching name '${name}'`);
    });
    return new StoragePool(parsePoolXml(xml, randomUUID), this.active);
  }
}

export class StoragePool {
  /** @internal */
  constructor(
    readonly definition: PoolDefinition,
    private readonly active: Set<string>,
  ) {}

  get name(): string {
    return this.definition.name;
  }

  get state(): PoolState {
    return this.active.has(this.name) ? 'running' : 'inactive';
  }

  /** `pool-build`: creates the target directory. */
  async build(): Promise<void> {
    await mkdir(this.definition.targetPath, { recursive: true, mode: 0o711 });
  }

  /** `pool-start`: the target directory must exist (fs/netfs: it must be the mounted file system). */
  async start(): Promise<void> {
    const info = await stat(this.definition.targetPath).catch(() => undefined);
    if (!info?.isDirectory()) throw new ImageToolError(`cannot start pool ${this.name}: ${this.definition.targetPath} is not a directory (build it first)`);
    this.active.add(this.name);
  }

  /** `pool-destroy`: stops the pool; volumes stay. */
  stop(): void {
    this.active.delete(this.name);
  }

  /** `pool-delete`: removes the (empty) target directory. */
  async delete(): Promise<void> {
    if (this.state === 'running') throw new ImageToolError(`pool ${this.name} is active`);
    await rmdir(this.definition.targetPath);
  }

  /** `pool-info` with capacity/allocation/available of the file system under the pool. */
  async info(persistent = true): Promise<PoolInfo> {
    const base = { name: this.name, uuid: this.definition.uuid, state: this.state, persistent };
    if (this.state !== 'running') return { ...base, capacity: 0, allocation: 0, available: 0 };
    const fs = await statfs(this.definition.targetPath);
    const capacity = fs.blocks * fs.bsize;
    const available = fs.bavail * fs.bsize;
    return { ...base, capacity, allocation: capacity - fs.bfree * fs.bsize, available };
  }

  /** `pool-dumpxml`. */
  async xml(): Promise<string> {
    const figures = await this.info();
    return poolToXml(this.definition, figures);
  }

  /** `pool-refresh` / `vol-list`: the volumes now in the directory. */
  async refresh(): Promise<VolumeInfo[]> {
    this.requireRunning();
    const entries = await readdir(this.definition.targetPath, { withFileTypes: true });
    const volumes: VolumeInfo[] = [];
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      volumes.push(await this.volumeInfo(entry.name).catch(() => ({ name: entry.name, path: this.pathOf(entry.name), type: 'file' as const, format: 'raw' as const, capacity: 0, allocation: 0 })));
    }
    return volumes.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** `vol-create`: a thin raw or qcow2 volume (allocation below capacity preallocates nothing). */
  async createVolume(xmlOrDefinition: string | VolumeDefinition): Promise<VolumeInfo> {
    this.requireRunning();
    const definition = typeof xmlOrDefinition === 'string' ? parseVolumeXml(xmlOrDefinition) : xmlOrDefinition;
    const path = this.pathOf(definition.name);
    if (await stat(path).then(() => true, () => false)) throw new ImageToolError(`storage volume ${definition.name} exists already`);
    const preallocation = definition.allocation !== undefined && definition.allocation >= definition.capacity ? 'full' : 'off';
    const image = await createImage(path, {
      format: definition.format,
      size: definition.capacity,
      preallocation,
      ...(definition.backingStore ? { backingFile: definition.backingStore.path, backingFormat: definition.backingStore.format } : {}),
    });
    await image.close();
    return this.volumeInfo(definition.name);
  }

  /** `vol-clone`: a full copy (the chain flattened) in the same format. */
  async cloneVolume(name: string, newName: string): Promise<VolumeInfo> {
    const info = await this.volumeInfo(name);
    const target = this.pathOf(newName);
    if (await stat(target).then(() => true, () => false)) throw new ImageToolError(`storage volume ${newName} exists already`);
    const source = await openImage(info.path, { readOnly: true });
    try {
      const copy = await createImage(target, { format: info.format, size: source.backend.size });
      try {
        await copyContents(source.backend, copy);
      } finally {
        await copy.close();
      }
    } finally {
      await source.backend.close();
    }
    return this.volumeInfo(newName);
  }

  /** `vol-resize`. */
  async resizeVolume(name: string, capacity: number, options: { shrink?: boolean } = {}): Promise<VolumeInfo> {
    const opened = await openImage(this.pathOf(await this.existing(name)), { backing: false });
    try {
      if (!canResize(opened.backend)) throw new ImageToolError('volume cannot be resized');
      if (capacity < opened.backend.size && !options.shrink) throw new ImageToolError('shrinking a volume needs the shrink option');
      await opened.backend.resize(capacity, options);
    } finally {
      await opened.backend.close();
    }
    return this.volumeInfo(name);
  }

  /** `vol-wipe`: afterwards the volume reads as zeros (qcow2 volumes are recreated empty, keeping their options). */
  async wipeVolume(name: string): Promise<void> {
    const info = await this.volumeInfo(name);
    if (info.format === 'raw') {
      const file = await NodeImageFile.open(info.path);
      try {
        const zeros = new Uint8Array(1 << 20);
        for (let at = 0; at < info.capacity; at += zeros.length) await file.write(at, zeros.subarray(0, Math.min(zeros.length, info.capacity - at)));
        await file.flush();
      } finally {
        await file.close();
      }
      return;
    }
    const opened = await openImage(info.path, { readOnly: true, backing: false });
    const header = (opened.backend as Qcow2Backend).header;
    const backingFile = opened.backingFile;
    const backingFormat = opened.backingFormat;
    await opened.backend.close();
    const recreated = await createQcow2(await NodeImageFile.open(info.path, { create: true }), {
      size: header.size,
      compat: header.version === 2 ? '0.10' : '1.1',
      clusterSize: 2 ** header.clusterBits,
      refcountBits: 2 ** header.refcountOrder,
      ...(backingFile !== undefined ? { backingFile, ...(backingFormat !== undefined ? { backingFormat } : {}) } : {}),
    });
    await recreated.close();
  }

  /** `vol-upload`: writes file bytes (not guest bytes) at `offset`. */
  async uploadVolume(name: string, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, offset = 0): Promise<void> {
    const file = await NodeImageFile.open(this.pathOf(await this.existing(name)));
    try {
      let at = offset;
      for await (const chunk of data) {
        await file.write(at, chunk);
        at += chunk.length;
      }
      await file.flush();
    } finally {
      await file.close();
    }
  }

  /** `vol-download`: the file's bytes from `offset`, in chunks. */
  async *downloadVolume(name: string, offset = 0, length?: number): AsyncGenerator<Uint8Array> {
    const file = await NodeImageFile.open(this.pathOf(await this.existing(name)), { readOnly: true });
    try {
      const end = Math.min(await file.size(), length === undefined ? Infinity : offset + length);
      for (let at = offset; at < end; at += 1 << 20) {
        const chunk = new Uint8Array(Math.min(1 << 20, end - at));
        await file.read(at, chunk);
        yield chunk;
      }
    } finally {
      await file.close();
    }
  }

  /** `vol-delete`. */
  async deleteVolume(name: string): Promise<void> {
    await rm(this.pathOf(await this.existing(name)));
  }

  /** `vol-info` / `vol-dumpxml` figures. */
  async volumeInfo(name: string): Promise<VolumeInfo> {
    const path = this.pathOf(await this.existing(name));
    const stats = await stat(path);
    const opened = await openImage(path, { readOnly: true, backing: false });
    await opened.backend.close();
    return {
      name,
      path,
      type: 'file',
      format: opened.format,
      capacity: opened.backend.size,
      allocation: stats.blocks * 512,
      ...(opened.backingFile !== undefined ? { backingStore: opened.backingFile } : {}),
      ...(opened.backingFormat !== undefined ? { backingFormat: opened.backingFormat } : {}),
    };
  }

  async volumeXml(name: string): Promise<string> {
    const { backingStore, backingFormat, ...info } = await this.volumeInfo(name);
    const format = backingFormat === 'raw' ? 'raw' : 'qcow2';
    return volumeToXml({ ...info, ...(backingStore !== undefined ? { backingStore: { path: backingStore, format } } : {}) });
  }

  private pathOf(name: string): string {
    if (name.includes('/') || name === '.' || name === '..' || name === '') throw new ImageToolError(`invalid volume name ${JSON.stringify(name)}`);
    return join(this.definition.targetPath, name);
  }

  private async existing(name: string): Promise<string> {
    this.requireRunning();
    if (!(await stat(this.pathOf(name)).then((info) => info.isFile(), () => false))) {
      throw new ImageToolError(`Storage volume not found: no storage vol with matching name '${name}'`);
    }
    return name;
  }

  private requireRunning(): void {
    if (this.state !== 'running') throw new ImageToolError(`storage pool '${this.name}' is not active`);
  }
}
