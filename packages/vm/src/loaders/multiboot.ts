import { guestAddress, type GuestMemory } from '@tsvirt/interfaces';
import { BootError } from '../errors.js';
import { E820Type, type E820Entry } from '../firmware/e820.js';

/** Multiboot 1 (the specification QEMU's -kernel loads): header magic, and what the loader puts in EAX. */
export const MULTIBOOT_HEADER_MAGIC = 0x1bad_b002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2bad_b002;
const FLAG_PAGE_ALIGN = 1 << 0;
const FLAG_MEMORY_INFO = 1 << 1;
const FLAG_VIDEO_MODE = 1 << 2;
const FLAG_AOUT_KLUDGE = 1 << 16;
/** Flags we honour; a kernel requiring others (bits 0-15) must be refused, as the spec says. */
const SUPPORTED_REQUIRED_FLAGS = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE;

/** Where the loader puts the boot information, in conventional memory under the EBDA. */
const INFO_BASE = 0x9000;
const INFO_END = 0x9_fc00;

export interface MultibootModule {
  readonly data: Uint8Array;
  readonly commandLine?: string;
}

export interface MultibootOptions {
  readonly kernel: Uint8Array;
  readonly commandLine?: string;
  readonly modules?: readonly MultibootModule[];
  readonly e820: readonly E820Entry[];
}

/** The state at a multiboot kernel's entry: 32-bit flat protected mode, paging off. */
export interface MultibootEntryState {
  readonly mode: 'protected';
  readonly instructionPointer: number;
  /** EAX = 0x2BADB002, EBX = the multiboot information structure. */
  readonly eax: number;
  readonly ebx: number;
}

interface Segment {
  readonly address: number;
  readonly data: Uint8Array;
  /** Bytes past `data` to zero (BSS). */
  readonly zeroed: number;
}

function findHeader(image: Uint8Array): { offset: number; flags: number } {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  for (let offset = 0; offset + 12 <= Math.min(image.length, 8192); offset += 4) {
    if (view.getUint32(offset, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = view.getUint32(offset + 4, true);
    if (((MULTIBOOT_HEADER_MAGIC + flags + view.getUint32(offset + 8, true)) >>> 0) !== 0) continue;
    return { offset, flags };
  }
  throw new BootError('not a multiboot kernel: no multiboot header (magic 0x1BADB002 with a valid checksum) in the first 8 KiB');
}

function elfSegments(image: Uint8Array): { entry: number; segments: Segment[] } {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.length < 52 || view.getUint32(0, false) !== 0x7f45_4c46) throw new BootError('not an ELF file and no multiboot address fields (a.out kludge)');
  if (image[4] !== 1) throw new BootError('64-bit ELF multiboot kernels are not loadable (as with QEMU): link the kernel as ELF32');
  if (image[5] !== 1 || view.getUint16(18, true) !== 3) throw new BootError('the ELF kernel is not little-endian x86 (EM_386)');
  const entry = view.getUint32(24, true);
  const phoff = view.getUint32(28, true);
  const phentsize = view.getUint16(42, true);
  const phnum = view.getUint16(44, true);
  if (phentsize < 32 || phoff + phnum * phentsize > image.length) throw new BootError('the ELF program headers run past the end of the file');
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (view.getUint32(at, true) !== 1 /* PT_LOAD */) continue;
    const offset = view.getUint32(at + 4, true);
    const physical = view.getUint32(at + 12, true);
    const fileSize = view.getUint32(at + 16, true);
    const memorySize = view.getUint32(at + 20, true);
    if (offset + fileSize > image.length) throw new BootError(`ELF segment ${i} runs past the end of the file`);
    if (memorySize < fileSize) throw new BootError(`ELF segment ${i} is smaller in memory than in the file`);
    segments.push({ address: physical, data: image.subarray(offset, offset + fileSize), zeroed: memorySize - fileSize });
  }
  if (segments.length === 0) throw new BootError('the ELF kernel has no loadable segments');
  return { entry, segments };
}

function aoutSegments(image: Uint8Array, headerOffset: number): { entry: number; segments: Segment[] } {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (headerOffset + 32 > image.length) throw new BootError('the multiboot header is truncated');
  const headerAddress = view.getUint32(headerOffset + 12, true);
  const loadAddress = view.getUint32(headerOffset + 16, true);
  const loadEnd = view.getUint32(headerOffset + 20, true);
  const bssEnd = view.getUint32(headerOffset + 24, true);
  const entry = view.getUint32(headerOffset + 28, true);
  if (loadAddress > headerAddress) throw new BootError('multiboot load_addr is above header_addr');
  const fileStart = headerOffset - (headerAddress - loadAddress);
  if (fileStart < 0) throw new BootError('multiboot header_addr/load_addr point before the start of the file');
  const length = loadEnd === 0 ? image.length - fileStart : loadEnd - loadAddress;
  if (length < 0 || fileStart + length > image.length) throw new BootError('multiboot load_end_addr runs past the end of the file');
  const zeroed = bssEnd === 0 ? 0 : bssEnd - (loadAddress + length);
  if (zeroed < 0) throw new BootError('multiboot bss_end_addr is below load_end_addr');
  return { entry, segments: [{ address: loadAddress, data: image.subarray(fileStart, fileStart + length), zeroed }] };
}

/**
 * Loads a multiboot (v1) kernel as QEMU's `-kernel` does: ELF32 segments at
 * their physical addresses (or the a.out-kludge address fields), modules
 * page-aligned after the kernel, and the multiboot information structure
 * (memory sizes, command line, modules, memory map, boot loader name).
 */
export function loadMultiboot(memory: GuestMemory, options: MultibootOptions): MultibootEntryState {
  const { offset, flags } = findHeader(options.kernel);
  const unsupported = flags & 0xffff & ~SUPPORTED_REQUIRED_FLAGS;
  if (unsupported !== 0) throw new BootError(`the kernel requires multiboot features this loader lacks (flags 0x${unsupported.toString(16)})`);
  const { entry, segments } = (flags & FLAG_AOUT_KLUDGE) !== 0 ? aoutSegments(options.kernel, offset) : elfSegments(options.kernel);

  let kernelEnd = 0;
  for (const segment of segments) {
    const length = segment.data.length + segment.zeroed;
    if (segment.address < INFO_END && segment.address + length > INFO_BASE) {
      throw new BootError(`a kernel segment at 0x${segment.address.toString(16)} overlaps the boot information area (0x${INFO_BASE.toString(16)}-0x${INFO_END.toString(16)})`);
    }
    if (!memory.isRam(guestAddress(segment.address), length)) throw new BootError(`a kernel segment at 0x${segment.address.toString(16)} (${length} bytes) is not in RAM; give the guest more memory`);
    memory.write(guestAddress(segment.address), segment.data);
    if (segment.zeroed > 0) memory.fill(guestAddress(segment.address + segment.data.length), segment.zeroed, 0);
    kernelEnd = Math.max(kernelEnd, segment.address + length);
  }

  // The information structure and its strings, built upwards from INFO_BASE.
  let cursor = INFO_BASE + 0x100;
  const place = (bytes: Uint8Array, alignment = 4): number => {
    const address = Math.ceil(cursor / alignment) * alignment;
    if (address + bytes.length > INFO_END) throw new BootError('the command lines and memory map do not fit in the boot information area');
    memory.write(guestAddress(address), bytes);
    cursor = address + bytes.length;
    return address;
  };
  const cString = (text: string) => place(new TextEncoder().encode(`${text}\0`), 1);

  const info = new Uint8Array(88);
  const infoView = new DataView(info.buffer);
  let infoFlags = 0;
  const lowKiB = options.e820.filter((e) => e.type === E820Type.Ram && e.start === 0).reduce((sum, e) => sum + e.size, 0) / 1024;
  const upper = options.e820.find((e) => e.type === E820Type.Ram && e.start === 0x10_0000);
  infoView.setUint32(4, Math.min(lowKiB, 640), true);
  infoView.setUint32(8, upper === undefined ? 0 : Math.floor(upper.size / 1024), true);
  infoFlags |= 1 << 0;
  infoView.setUint32(16, cString(options.commandLine ?? ''), true);
  infoFlags |= 1 << 2;

  const modules = options.modules ?? [];
  if (modules.length > 0) {
    let moduleAddress = Math.ceil(kernelEnd / 4096) * 4096;
    const list = new Uint8Array(16 * modules.length);
    const listView = new DataView(list.buffer);
    modules.forEach((module, index) => {
      if (!memory.isRam(guestAddress(moduleAddress), module.data.length)) throw new BootError(`module ${index} (${module.data.length} bytes) does not fit in RAM after the kernel; give the guest more memory`);
      memory.write(guestAddress(moduleAddress), module.data);
      listView.setUint32(index * 16, moduleAddress, true);
      listView.setUint32(index * 16 + 4, moduleAddress + module.data.length, true);
      listView.setUint32(index * 16 + 8, cString(module.commandLine ?? ''), true);
      moduleAddress = Math.ceil((moduleAddress + module.data.length) / 4096) * 4096;
    });
    infoView.setUint32(20, modules.length, true);
    infoView.setUint32(24, place(list), true);
    infoFlags |= 1 << 3;
  }

  const map = new Uint8Array(24 * options.e820.length);
  const mapView = new DataView(map.buffer);
  options.e820.forEach((entry, index) => {
    mapView.setUint32(index * 24, 20, true); // size of the rest of the entry
    mapView.setBigUint64(index * 24 + 4, BigInt(entry.start), true);
    mapView.setBigUint64(index * 24 + 12, BigInt(entry.size), true);
    mapView.setUint32(index * 24 + 20, entry.type, true);
  });
  infoView.setUint32(44, map.length, true);
  infoView.setUint32(48, place(map), true);
  infoFlags |= 1 << 6;
  infoView.setUint32(64, cString('tsvirt'), true);
  infoFlags |= 1 << 9;
  infoView.setUint32(0, infoFlags, true);
  memory.write(guestAddress(INFO_BASE), info);

  return { mode: 'protected', instructionPointer: entry, eax: MULTIBOOT_BOOTLOADER_MAGIC, ebx: INFO_BASE };
}
