import { BootError } from '../errors.js';

/**
 * The parts of a bzImage's real-mode setup header (Linux
 * Documentation/arch/x86/boot.rst) a loader needs. Offsets are from the
 * start of the file (the header begins at 0x1F1).
 */
export interface SetupHeader {
  /** Boot protocol version, e.g. 0x020f for 2.15. */
  readonly version: number;
  /** 512-byte sectors of real-mode setup code after the boot sector. */
  readonly setupSectors: number;
  readonly loadFlags: number;
  readonly code32Start: number;
  readonly initrdAddressMax: number;
  readonly kernelAlignment: number;
  readonly relocatable: boolean;
  readonly extendedLoadFlags: number;
  readonly commandLineSize: number;
  readonly preferredAddress: number;
  /** Bytes of memory the kernel needs from its load address while it decompresses itself. */
  readonly initSize: number;
  /** File offset of the protected-mode kernel. */
  readonly protectedModeOffset: number;
}

/** LOADED_HIGH: the protected-mode code is loaded at 0x100000. */
export const LOADFLAG_LOADED_HIGH = 0x01;
export const LOADFLAG_CAN_USE_HEAP = 0x80;
/** XLF_KERNEL_64: the kernel has the 64-bit entry point at its load address + 0x200. */
export const XLF_KERNEL_64 = 0x01;

/** The oldest protocol we boot: 2.06 gives cmdline_size and a 32-bit boot entry with all we need. */
const MINIMUM_PROTOCOL = 0x0206;

/**
 * Reads and checks the setup header. Throws {@link BootError} naming the
 * problem for anything that is not a bzImage we can boot.
 */
/** True when `image` has a Linux boot protocol header ("HdrS" at 0x202), as QEMU tells a bzImage from a multiboot kernel. */
export function isBzImage(image: Uint8Array): boolean {
  return image.length > 0x206 && new DataView(image.buffer, image.byteOffset, image.byteLength).getUint32(0x202, true) === 0x5372_6448;
}

export function parseSetupHeader(image: Uint8Array): SetupHeader {
  if (image.length < 0x270) throw new BootError(`not a Linux kernel: ${image.length} bytes is too short for a bzImage setup header`);
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (view.getUint16(0x1fe, true) !== 0xaa55 || view.getUint32(0x202, true) !== 0x5372_6448 /* "HdrS" */) {
    throw new BootError('not a Linux kernel: no bzImage setup header (boot flag 0xAA55 and "HdrS" are missing)');
  }
  const version = view.getUint16(0x206, true);
  if (version < MINIMUM_PROTOCOL) {
    throw new BootError(`Linux boot protocol ${version >> 8}.${(version & 0xff).toString().padStart(2, '0')} is too old: 2.06 or later is needed`);
  }
  const loadFlags = view.getUint8(0x211);
  if ((loadFlags & LOADFLAG_LOADED_HIGH) === 0) throw new BootError('zImage (loaded low) kernels are not supported: a bzImage is needed');
  const setupSectors = view.getUint8(0x1f1) === 0 ? 4 : view.getUint8(0x1f1);
  const protectedModeOffset = (setupSectors + 1) * 512;
  if (protectedModeOffset >= image.length) {
    throw new BootError(`truncated kernel: the setup code claims ${setupSectors} sectors but the file ends at ${image.length} bytes`);
  }
  return {
    version,
    setupSectors,
    loadFlags,
    code32Start: view.getUint32(0x214, true),
    initrdAddressMax: view.getUint32(0x22c, true),
    kernelAlignment: view.getUint32(0x230, true),
    relocatable: view.getUint8(0x234) !== 0,
    extendedLoadFlags: version >= 0x020c ? view.getUint16(0x236, true) : 0,
    commandLineSize: view.getUint32(0x238, true),
    preferredAddress: version >= 0x020a ? Number(view.getBigUint64(0x258, true)) : 0x10_0000,
    initSize: version >= 0x020a ? view.getUint32(0x260, true) : 0,
    protectedModeOffset,
  };
}
