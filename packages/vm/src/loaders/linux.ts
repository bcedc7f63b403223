import { PAGE_SIZE, guestAddress, type GuestMemory } from '@tsvirt/interfaces';
import { BootError } from '../errors.js';
import { encodeE820, type E820Entry } from '../firmware/e820.js';
import { LOADFLAG_CAN_USE_HEAP, XLF_KERNEL_64, parseSetupHeader, type SetupHeader } from './bzimage.js';

/** Where the loader puts its own structures in low memory (below the EBDA, above the IVT and BDA). */
export const LinuxBootAddresses = {
  gdt: 0x1000,
  bootParams: 0x7000,
  commandLine: 0x2_0000,
  /** PML4, one PDPT and four page directories identity-map the low 4 GiB with 2 MiB pages. */
  pageTables: 0x9000,
  /** Protected-mode kernels load at 1 MiB (code32_start). */
  kernel: 0x10_0000,
} as const;

/** Boot GDT selectors, as the boot protocol requires: __BOOT_CS = 0x10, __BOOT_DS = 0x18. */
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;

export interface LinuxBootOptions {
  readonly kernel: Uint8Array;
  readonly initrd?: Uint8Array;
  readonly commandLine?: string;
  /** The e820 map to give the kernel. */
  readonly e820: readonly E820Entry[];
  /** One past the highest address of RAM below 4 GiB (the initrd goes under it). */
  readonly lowRamEnd: number;
  /** Physical address of the ACPI RSDP, passed in boot_params (protocol 2.14+). */
  readonly acpiRsdp?: number;
  /** Enter the kernel through its 64-bit entry point (the kernel must support it). Default: when the kernel has one. */
  readonly longMode?: boolean;
}

/** The processor state at the kernel's entry, for the VM to load into the boot CPU. */
export interface LinuxEntryState {
  readonly mode: 'protected' | 'long';
  readonly instructionPointer: number;
  /** ESI/RSI: the physical address of boot_params. */
  readonly bootParams: number;
  readonly gdtBase: number;
  readonly gdtLimit: number;
  readonly codeSelector: number;
  readonly dataSelector: number;
  readonly cr0: number;
  readonly cr3: number;
  readonly cr4: number;
  /** EFER (LME|LMA for long mode). */
  readonly efer: number;
}

export interface LinuxBootPlan {
  readonly header: SetupHeader;
  readonly entry: LinuxEntryState;
  readonly initrdAddress: number | undefined;
  readonly kernelEnd: number;
}

const CR0_PE = 1 << 0;
const CR0_ET = 1 << 4;
const CR0_PG = 1 << 31;
const CR4_PAE = 1 << 5;
const EFER_LME = 1 << 8;
const EFER_LMA = 1 << 10;
const MAX_E820_ENTRIES = 128;

/**
 * Loads a bzImage (and initrd and command line) into guest memory following
 * the Linux x86 boot protocol, as QEMU's `-kernel` does without firmware:
 * the protected-mode kernel at 1 MiB, boot_params ("zero page") with the
 * setup header, e820 map, command line and initrd, and a GDT; for the 64-bit
 * entry also identity-mapped page tables. Returns the entry state.
 */
export function loadLinux(memory: GuestMemory, options: LinuxBootOptions): LinuxBootPlan {
  const header = parseSetupHeader(options.kernel);
  const longMode = options.longMode ?? (header.extendedLoadFlags & XLF_KERNEL_64) !== 0;
  if (longMode && (header.extendedLoadFlags & XLF_KERNEL_64) === 0) throw new BootError('this kernel has no 64-bit entry point (XLF_KERNEL_64 is clear)');
  if (options.e820.length > MAX_E820_ENTRIES) throw new BootError(`an e820 map holds at most ${MAX_E820_ENTRIES} entries`);

  const commandLine = new TextEncoder().encode(options.commandLine ?? '');
  const commandLineLimit = header.commandLineSize > 0 ? header.commandLineSize : 255;
  if (commandLine.length > commandLineLimit) throw new BootError(`command line is ${commandLine.length} bytes; this kernel takes at most ${commandLineLimit}`);

  const protectedMode = options.kernel.subarray(header.protectedModeOffset);
  const kernelAddress = LinuxBootAddresses.kernel;
  // The kernel decompresses in place and needs init_size bytes from its load address.
  const kernelEnd = kernelAddress + Math.max(protectedMode.length, header.initSize);
  if (!memory.isRam(guestAddress(kernelAddress), kernelEnd - kernelAddress)) {
    throw new BootError(`the kernel needs RAM from 0x${kernelAddress.toString(16)} to 0x${kernelEnd.toString(16)} (${Math.ceil((kernelEnd - kernelAddress) / 2 ** 20)} MiB); give the guest more memory`);
  }
  memory.write(guestAddress(kernelAddress), protectedMode);

  let initrdAddress: number | undefined;
  if (options.initrd !== undefined && options.initrd.length > 0) {
    const ceiling = Math.min(header.initrdAddressMax + 1, options.lowRamEnd);
    initrdAddress = Math.floor((ceiling - options.initrd.length) / PAGE_SIZE) * PAGE_SIZE;
    if (initrdAddress < kernelEnd) {
      throw new BootError(`the initrd (${options.initrd.length} bytes) does not fit between the kernel (ending at 0x${kernelEnd.toString(16)}) and 0x${ceiling.toString(16)}; give the guest more memory`);
    }
    memory.write(guestAddress(initrdAddress), options.initrd);
  }

  memory.write(guestAddress(LinuxBootAddresses.commandLine), commandLine);
  memory.writeU8(guestAddress(LinuxBootAddresses.commandLine + commandLine.length), 0);

  const bootParams = buildBootParams(options.kernel, header, {
    commandLine: LinuxBootAddresses.commandLine,
    initrdAddress,
    initrdSize: options.initrd?.length ?? 0,
    e820: options.e820,
    acpiRsdp: options.acpiRsdp,
  });
  memory.write(guestAddress(LinuxBootAddresses.bootParams), bootParams);

  const gdt = new Uint8Array(4 * 8);
  const gdtView = new DataView(gdt.buffer);
  // Flat 4 GiB code (64-bit when entering in long mode) and data, as the protocol's __BOOT_CS/__BOOT_DS.
  gdtView.setBigUint64(BOOT_CS, longMode ? 0x00af_9b00_0000_ffffn : 0x00cf_9b00_0000_ffffn, true);
  gdtView.setBigUint64(BOOT_DS, 0x00cf_9300_0000_ffffn, true);
  memory.write(guestAddress(LinuxBootAddresses.gdt), gdt);

  let cr3 = 0;
  if (longMode) cr3 = writeIdentityPageTables(memory, LinuxBootAddresses.pageTables);

  const entry: LinuxEntryState = longMode
    ? {
        mode: 'long',
        instructionPointer: kernelAddress + 0x200,
        bootParams: LinuxBootAddresses.bootParams,
        gdtBase: LinuxBootAddresses.gdt,
        gdtLimit: gdt.length - 1,
        codeSelector: BOOT_CS,
        dataSelector: BOOT_DS,
        cr0: (CR0_PE | CR0_ET | CR0_PG) >>> 0,
        cr3,
        cr4: CR4_PAE,
        efer: EFER_LME | EFER_LMA,
      }
    : {
        mode: 'protected',
        instructionPointer: header.code32Start,
        bootParams: LinuxBootAddresses.bootParams,
        gdtBase: LinuxBootAddresses.gdt,
        gdtLimit: gdt.length - 1,
        codeSelector: BOOT_CS,
        dataSelector: BOOT_DS,
        cr0: CR0_PE | CR0_ET,
        cr3: 0,
        cr4: 0,
        efer: 0,
      };
  return { header, entry, initrdAddress, kernelEnd };
}

interface BootParamsFields {
  readonly commandLine: number;
  readonly initrdAddress: number | undefined;
  readonly initrdSize: number;
  readonly e820: readonly E820Entry[];
  readonly acpiRsdp: number | undefined;
}

/** The 4 KiB zero page: the kernel's own setup header, completed with what a boot loader fills in. */
function buildBootParams(kernel: Uint8Array, header: SetupHeader, fields: BootParamsFields): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE);
  const view = new DataView(page.buffer);
  // The setup header runs from 0x1F1 to the byte given at 0x201 (the jump's offset) + 0x202.
  const headerEnd = Math.min(0x202 + kernel[0x201]!, 0x290, kernel.length);
  page.set(kernel.subarray(0x1f1, headerEnd), 0x1f1);
  view.setUint8(0x210, 0xff); // type_of_loader: "undefined" boot loader
  view.setUint8(0x211, header.loadFlags | LOADFLAG_CAN_USE_HEAP);
  view.setUint16(0x224, 0xfe00, true); // heap_end_ptr: end of the setup heap, relative to the real-mode code
  view.setUint32(0x228, fields.commandLine, true);
  if (fields.initrdAddress !== undefined) {
    view.setUint32(0x218, fields.initrdAddress, true);
    view.setUint32(0x21c, fields.initrdSize, true);
  }
  if (fields.acpiRsdp !== undefined && header.version >= 0x020e) view.setBigUint64(0x070, BigInt(fields.acpiRsdp), true);
  view.setUint8(0x1e8, fields.e820.length);
  page.set(encodeE820(fields.e820), 0x2d0);
  return page;
}

/** Identity-maps the low 4 GiB with 2 MiB pages; returns CR3. */
function writeIdentityPageTables(memory: GuestMemory, base: number): number {
  const pml4 = base;
  const pdpt = base + PAGE_SIZE;
  const directories = base + 2 * PAGE_SIZE;
  const PRESENT_WRITABLE = 0x3;
  const LARGE_PAGE = 0x80;
  memory.writeU64(guestAddress(pml4), BigInt(pdpt | PRESENT_WRITABLE));
  for (let gib = 0; gib < 4; gib++) {
    const directory = directories + gib * PAGE_SIZE;
    memory.writeU64(guestAddress(pdpt + gib * 8), BigInt(directory | PRESENT_WRITABLE));
    const table = new Uint8Array(PAGE_SIZE);
    const view = new DataView(table.buffer);
    for (let entry = 0; entry < 512; entry++) {
      view.setBigUint64(entry * 8, BigInt(gib * 2 ** 30 + entry * 2 ** 21) | BigInt(PRESENT_WRITABLE | LARGE_PAGE), true);
    }
    memory.write(guestAddress(directory), table);
  }
  return pml4;
}
