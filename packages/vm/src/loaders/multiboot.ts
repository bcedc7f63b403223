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

/**
 * Where QEMU's multiboot loader puts the memory map (0x9000) and the
 * information structure (0x9500), in conventional memory under the EBDA
 * (hw/i386/multiboot.c). Everything else it builds goes after the kernel.
 */
const MEMORY_MAP_ADDRESS = 0x9000;
const INFO_ADDRESS = 0x9500;
const INFO_SIZE = 88;
/** QEMU leaves 0x500 bytes for the map its option ROM reads from e820. */
const MEMORY_MAP_ROOM = INFO_ADDRESS - MEMORY_MAP_ADDRESS;
const PAGE = 4096;
const FLAG_INFO_MEMORY = 1 << 0;
const FLAG_INFO_BOOT_DEVICE = 1 << 1;
const FLAG_INFO_COMMAND_LINE = 1 << 2;
const FLAG_INFO_MODULES = 1 << 3;
const FLAG_INFO_MEMORY_MAP = 1 << 6;
const FLAG_INFO_LOADER_NAME = 1 << 9;
/** QEMU's boot_device: BIOS drive 0x80, no partitions. */
const BOOT_DEVICE = 0x8000_ffff;

export interface MultibootModule {
  readonly data: Uint8Array;
  readonly commandLine?: string;
}

export interface MultibootOptions {
  readonly kernel: Uint8Array;
  readonly commandLine?: string;
  /**
   * The kernel's file name, which QEMU puts before the command line ("NAME
   * ARGS"): programs that take the command line as argv, as kvm-unit-tests
   * do, see it as argv[0]. Without it the command line is passed alone.
   */
  readonly kernelName?: string;
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
  /** The lowest address loaded; `image` is guest memory from there to the end of the last module (QEMU's multiboot buffer, which it also offers in fw_cfg). */
  readonly loadAddress: number;
  readonly image: Uint8Array;
  /** The information structure's 88 bytes as written at `ebx`. */
  readonly info: Uint8Array;
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
 * Loads a multiboot (v1) kernel as QEMU's `-kernel` does (hw/i386/multiboot.c
 * and its option ROM): ELF32 segments at their physical addresses (or the
 * a.out-kludge address fields); after the kernel, page-aligned, the module
 * list, the module command lines, the kernel's command line and the loader
 * name; after those, each module page-aligned; the memory map at 0x9000 and
 * the information structure at 0x9500. QEMU writes those two before copying
 * the kernel, so a kernel loaded over them (kvm-unit-tests' realmode test at
 * 0x8000) wins and finds no information there; here they move after the
 * kernel instead, so EBX always points at a valid structure.
 */
export function loadMultiboot(memory: GuestMemory, options: MultibootOptions): MultibootEntryState {
  const { offset, flags } = findHeader(options.kernel);
  const unsupported = flags & 0xffff & ~SUPPORTED_REQUIRED_FLAGS;
  if (unsupported !== 0) throw new BootError(`the kernel requires multiboot features this loader lacks (flags 0x${unsupported.toString(16)})`);
  const { entry, segments } = (flags & FLAG_AOUT_KLUDGE) !== 0 ? aoutSegments(options.kernel, offset) : elfSegments(options.kernel);

  let kernelStart = Number.POSITIVE_INFINITY;
  let kernelEnd = 0;
  for (const segment of segments) {
    const length = segment.data.length + segment.zeroed;
    if (!memory.isRam(guestAddress(segment.address), length)) throw new BootError(`a kernel segment at 0x${segment.address.toString(16)} (${length} bytes) is not in RAM; give the guest more memory`);
    memory.write(guestAddress(segment.address), segment.data);
    if (segment.zeroed > 0) memory.fill(guestAddress(segment.address + segment.data.length), segment.zeroed, 0);
    kernelStart = Math.min(kernelStart, segment.address);
    kernelEnd = Math.max(kernelEnd, segment.address + length);
  }
  const overlapsKernel = (start: number, length: number) => segments.some((segment) => segment.address < start + length && segment.address + segment.data.length + segment.zeroed > start);

  const encoder = new TextEncoder();
  const modules = options.modules ?? [];
  const kernelCommandLine = options.kernelName === undefined ? (options.commandLine ?? '') : `${options.kernelName} ${options.commandLine ?? ''}`;
  const memoryMap = new Uint8Array(24 * options.e820.length);
  const mapView = new DataView(memoryMap.buffer);
  options.e820.forEach((e820, index) => {
    mapView.setUint32(index * 24, 20, true); // size of the rest of the entry
    mapView.setBigUint64(index * 24 + 4, BigInt(e820.start), true);
    mapView.setBigUint64(index * 24 + 12, BigInt(e820.size), true);
    mapView.setUint32(index * 24 + 20, e820.type, true);
  });
  // QEMU's place for the map and the structure, unless the kernel was loaded over it (or the map is too long for it).
  const lowPlacement = memoryMap.length <= MEMORY_MAP_ROOM && !overlapsKernel(MEMORY_MAP_ADDRESS, MEMORY_MAP_ROOM + INFO_SIZE);

  // After the kernel: the module list, the command lines and the loader name; then, page-aligned, the modules.
  let cursor = Math.ceil(kernelEnd / PAGE) * PAGE;
  const place = (bytes: Uint8Array, alignment: number): number => {
    const address = Math.ceil(cursor / alignment) * alignment;
    if (!memory.isRam(guestAddress(address), Math.max(bytes.length, 1))) throw new BootError(`the multiboot information (${bytes.length} bytes at 0x${address.toString(16)}) does not fit in RAM after the kernel; give the guest more memory`);
    memory.write(guestAddress(address), bytes);
    cursor = address + bytes.length;
    return address;
  };
  const cString = (text: string) => place(encoder.encode(`${text}\0`), 1);
  const moduleList = new Uint8Array(16 * modules.length);
  const moduleListAddress = place(moduleList, 4);
  const moduleCommandLines = modules.map((module) => cString(module.commandLine ?? ''));
  const commandLineAddress = cString(kernelCommandLine);
  const loaderNameAddress = cString('tsvirt');
  const infoAddress = lowPlacement ? INFO_ADDRESS : place(new Uint8Array(INFO_SIZE), 4);
  const memoryMapAddress = lowPlacement ? MEMORY_MAP_ADDRESS : place(memoryMap, 8);
  if (lowPlacement) memory.write(guestAddress(MEMORY_MAP_ADDRESS), memoryMap);

  const listView = new DataView(moduleList.buffer);
  cursor = Math.ceil(cursor / PAGE) * PAGE;
  modules.forEach((module, index) => {
    const start = Math.ceil(cursor / PAGE) * PAGE;
    if (!memory.isRam(guestAddress(start), Math.max(module.data.length, 1))) throw new BootError(`module ${index} (${module.data.length} bytes) does not fit in RAM after the kernel; give the guest more memory`);
    memory.write(guestAddress(start), module.data);
    listView.setUint32(index * 16, start, true);
    listView.setUint32(index * 16 + 4, start + module.data.length, true);
    listView.setUint32(index * 16 + 8, moduleCommandLines[index]!, true);
    cursor = start + module.data.length;
  });
  memory.write(guestAddress(moduleListAddress), moduleList);
  const imageEnd = Math.ceil(cursor / PAGE) * PAGE;

  const info = new Uint8Array(INFO_SIZE);
  const infoView = new DataView(info.buffer);
  const lowKiB = options.e820.filter((e) => e.type === E820Type.Ram && e.start === 0).reduce((sum, e) => sum + e.size, 0) / 1024;
  const upper = options.e820.find((e) => e.type === E820Type.Ram && e.start === 0x10_0000);
  infoView.setUint32(0, FLAG_INFO_MEMORY | FLAG_INFO_BOOT_DEVICE | FLAG_INFO_COMMAND_LINE | FLAG_INFO_MODULES | FLAG_INFO_MEMORY_MAP | FLAG_INFO_LOADER_NAME, true);
  infoView.setUint32(4, Math.min(Math.floor(lowKiB), 640), true);
  infoView.setUint32(8, upper === undefined ? 0 : Math.floor(upper.size / 1024), true);
  infoView.setUint32(12, BOOT_DEVICE, true);
  infoView.setUint32(16, commandLineAddress, true);
  infoView.setUint32(20, modules.length, true);
  infoView.setUint32(24, moduleListAddress, true);
  infoView.setUint32(44, memoryMap.length, true);
  infoView.setUint32(48, memoryMapAddress, true);
  infoView.setUint32(64, loaderNameAddress, true);
  memory.write(guestAddress(infoAddress), info);

  const image = new Uint8Array(imageEnd - kernelStart);
  memory.read(guestAddress(kernelStart), image);
  return { mode: 'protected', instructionPointer: entry, eax: MULTIBOOT_BOOTLOADER_MAGIC, ebx: infoAddress, loadAddress: kernelStart, image, info };
}
