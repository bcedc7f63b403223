/**
 * The PC CMOS NVRAM fields firmware and Linux read, as QEMU's pc machine
 * fills them (hw/i386/pc.c). Each function writes bytes through `write`.
 */

export type CmosWrite = (index: number, value: number) => void;

export const CMOS_EQUIPMENT = 0x14;
export const CMOS_BASE_MEMORY_LOW = 0x15;
export const CMOS_EXTENDED_MEMORY_LOW = 0x17;
export const CMOS_EXTENDED_MEMORY_ALT_LOW = 0x30;
export const CMOS_BOOT_THIRD = 0x38;
export const CMOS_BOOT_FIRST_SECOND = 0x3d;
export const CMOS_MEMORY_ABOVE_16M_LOW = 0x34;
export const CMOS_MEMORY_ABOVE_4G_LOW = 0x5b;
export const CMOS_CPU_COUNT_MINUS_ONE = 0x5f;

const KIB = 1024;
const MIB = 1024 * KIB;

export interface MemoryLayout {
  /** RAM below 4 GiB in bytes (including the first MiB). */
  below4G: number;
  /** RAM mapped above 4 GiB in bytes. */
  above4G: number;
}

function word(write: CmosWrite, index: number, value: number): void {
  write(index, value & 0xff);
  write(index + 1, (value >> 8) & 0xff);
}

export function writeMemoryLayout(write: CmosWrite, layout: MemoryLayout): void {
  if (!Number.isSafeInteger(layout.below4G) || layout.below4G < 0 || !Number.isSafeInteger(layout.above4G) || layout.above4G < 0) {
    throw new RangeError('memory sizes must be non-negative integers (bytes)');
  }
  // Conventional memory is always reported as 640 KiB.
  word(write, CMOS_BASE_MEMORY_LOW, 640);
  const extendedKib = Math.min(Math.max(Math.floor(layout.below4G / KIB) - 1024, 0), 0xffff);
  word(write, CMOS_EXTENDED_MEMORY_LOW, extendedKib);
  word(write, CMOS_EXTENDED_MEMORY_ALT_LOW, extendedKib);
  const above16M = Math.min(Math.max(Math.floor((layout.below4G - 16 * MIB) / (64 * KIB)), 0), 0xffff);
  word(write, CMOS_MEMORY_ABOVE_16M_LOW, above16M);
  const above4G = Math.min(Math.floor(layout.above4G / (64 * KIB)), 0xffffff);
  write(CMOS_MEMORY_ABOVE_4G_LOW, above4G & 0xff);
  write(CMOS_MEMORY_ABOVE_4G_LOW + 1, (above4G >> 8) & 0xff);
  write(CMOS_MEMORY_ABOVE_4G_LOW + 2, (above4G >> 16) & 0xff);
}

export function writeCpuCount(write: CmosWrite, count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > 256) throw new RangeError(`CPU count ${count} is not 1-256`);
  write(CMOS_CPU_COUNT_MINUS_ONE, count - 1);
}

/** Boot devices in the codes of the CMOS boot order nibbles. */
export type BootDevice = 'floppy' | 'disk' | 'cdrom' | 'network';
const BOOT_CODES: Record<BootDevice, number> = { floppy: 1, disk: 2, cdrom: 3, network: 4 };

/** Up to three boot devices, first first; `floppySignatureCheck` is the inverse of 0x38 bit 0. */
export function writeBootOrder(write: CmosWrite, order: readonly BootDevice[], floppySignatureCheck = false): void {
  if (order.length > 3) throw new RangeError('the CMOS boot order holds at most three devices');
  const codes = order.map((device) => {
    const code = BOOT_CODES[device];
    if (code === undefined) throw new RangeError(`unknown boot device ${String(device)}`);
    return code;
  });
  write(CMOS_BOOT_FIRST_SECOND, ((codes[1] ?? 0) << 4) | (codes[0] ?? 0));
  write(CMOS_BOOT_THIRD, ((codes[2] ?? 0) << 4) | (floppySignatureCheck ? 0 : 1));
}

export interface Equipment {
  floppyDrives: number;
  fpu: boolean;
  ps2Mouse: boolean;
}

/** Equipment byte: bit 0 floppy present, 1 FPU, 2 PS/2 mouse, 5:4 display (00 = VGA), 7:6 floppies - 1. */
export function writeEquipment(write: CmosWrite, equipment: Equipment): void {
  const floppies = equipment.floppyDrives;
  if (!Number.isInteger(floppies) || floppies < 0 || floppies > 4) throw new RangeError(`floppy drive count ${floppies} is not 0-4`);
  let value = 0;
  if (floppies > 0) value |= 0x01 | ((floppies - 1) << 6);
  if (equipment.fpu) value |= 0x02;
  if (equipment.ps2Mouse) value |= 0x04;
  write(CMOS_EQUIPMENT, value);
}
