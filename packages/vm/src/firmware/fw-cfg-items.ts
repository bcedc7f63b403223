import { FW_CFG_ARCH_LOCAL, FwCfgKey, type FwCfg } from '@tsvirt/devices-emulated';
import { encodeE820, type E820Entry } from './e820.js';

/** QEMU's x86 arch-local fw_cfg keys (hw/i386/fw_cfg.h). */
export const X86FwCfgKey = {
  AcpiTables: FW_CFG_ARCH_LOCAL + 0,
  SmbiosEntries: FW_CFG_ARCH_LOCAL + 1,
  Irq0Override: FW_CFG_ARCH_LOCAL + 2,
  Hpet: FW_CFG_ARCH_LOCAL + 4,
} as const;

export interface PcFwCfgOptions {
  /** vCPUs at boot (FW_CFG_NB_CPUS), which is also the APIC ID limit here: IDs are 0..cpus-1. */
  readonly cpus: number;
  /** All guest RAM, below and above 4 GiB (FW_CFG_RAM_SIZE). */
  readonly ramBytes: number;
  /** The HPET's general capabilities register, low half (its event timer block ID), and its MMIO base. */
  readonly hpet: { readonly blockId: number; readonly address: number };
}

function u16(value: number): Uint8Array {
  return Uint8Array.of(value & 0xff, (value >>> 8) & 0xff);
}

function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0, true);
  return bytes;
}

function u64(value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(value), true);
  return bytes;
}

/**
 * The items QEMU's `pc` machine puts in fw_cfg for every guest (hw/nvram/fw_cfg.c's common
 * items and hw/i386/fw_cfg.c's fw_cfg_arch_create), so software that asks
 * fw_cfg about the machine — SeaBIOS, kvm-unit-tests (which waits for
 * FW_CFG_NB_CPUS - 1 application processors) — learns what QEMU would tell it:
 * the CPU count and APIC ID limit, the RAM size, a nil UUID, no boot menu,
 * IRQ 0 overridden to GSI 2, one HPET, an empty NUMA table, the e820 map as
 * the file "etc/e820", and "etc/boot-fail-wait" (-1: never reboot after a
 * failed boot, QEMU's default).
 */
export function installPcFwCfgItems(fwCfg: FwCfg, options: PcFwCfgOptions): void {
  const { cpus, ramBytes } = options;
  fwCfg.addBytes(FwCfgKey.Uuid, new Uint8Array(16));
  fwCfg.addBytes(FwCfgKey.RamSize, u64(ramBytes));
  // QEMU sets NOGRAPHIC only for -nographic; tsvirt has no display at all, but a guest asking wants QEMU's default.
  fwCfg.addBytes(FwCfgKey.NoGraphic, u16(0));
  fwCfg.addBytes(FwCfgKey.BootMenu, u16(0));
  fwCfg.addBytes(FwCfgKey.CpuCount, u16(cpus));
  // QEMU's MAX_CPUS is the APIC ID limit (one past the highest APIC ID), for old SeaBIOS's tables.
  fwCfg.addBytes(FwCfgKey.MaxCpus, u16(cpus));
  // The NUMA channel: the node count (0), then a node for each APIC ID below the limit (all 0), then per-node memory (none).
  fwCfg.addBytes(FwCfgKey.NumaData, new Uint8Array(8 * (1 + cpus)));
  // No -acpitable tables: the count (u16) is 0.
  fwCfg.addBytes(X86FwCfgKey.AcpiTables, u16(0));
  fwCfg.addBytes(X86FwCfgKey.Irq0Override, u32(1));
  fwCfg.addBytes(X86FwCfgKey.Hpet, hpetConfiguration(options.hpet.blockId, options.hpet.address));
  fwCfg.addFile('etc/boot-fail-wait', u32(0xffff_ffff));
}

/** "etc/e820": the memory map as 20-byte entries (u64 address, u64 length, u32 type), as QEMU's e820_table. */
export function installE820FwCfgFile(fwCfg: FwCfg, e820: readonly E820Entry[]): void {
  fwCfg.addFile('etc/e820', encodeE820(e820));
}

/**
 * struct hpet_fw_config (packed): a count, then eight entries of event timer
 * block ID (u32), address (u64), minimum tick (u16) and page protection (u8).
 */
function hpetConfiguration(blockId: number, address: number): Uint8Array {
  const bytes = new Uint8Array(1 + 8 * 15);
  const view = new DataView(bytes.buffer);
  bytes[0] = 1;
  view.setUint32(1, blockId >>> 0, true);
  view.setBigUint64(5, BigInt(address), true);
  return bytes;
}

/** Where QEMU's multiboot option ROM finds the kernel and the boot information (hw/i386/multiboot.c). */
export interface MultibootFwCfg {
  readonly entry: number;
  /** The lowest address loaded, and everything from there: the kernel, the module list, command lines, modules. */
  readonly loadAddress: number;
  readonly image: Uint8Array;
  /** Where the multiboot information structure is, and its 88 bytes. */
  readonly infoAddress: number;
  readonly info: Uint8Array;
}

/**
 * The -kernel items QEMU gives a multiboot kernel: KERNEL_ENTRY, KERNEL_ADDR,
 * KERNEL_SIZE and KERNEL_DATA (the loaded image), INITRD_ADDR, INITRD_SIZE and
 * INITRD_DATA (the information structure). Guests read some of them back:
 * kvm-unit-tests reads key 0x11 (KERNEL_DATA) as its "MAX_RAM".
 */
export function installMultibootFwCfgItems(fwCfg: FwCfg, multiboot: MultibootFwCfg): void {
  fwCfg.addBytes(FwCfgKey.KernelEntry, u32(multiboot.entry));
  fwCfg.addBytes(FwCfgKey.KernelAddress, u32(multiboot.loadAddress));
  fwCfg.addBytes(FwCfgKey.KernelSize, u32(multiboot.image.length));
  fwCfg.addBytes(FwCfgKey.KernelData, multiboot.image);
  fwCfg.addBytes(FwCfgKey.InitrdAddress, u32(multiboot.infoAddress));
  fwCfg.addBytes(FwCfgKey.InitrdSize, u32(multiboot.info.length));
  fwCfg.addBytes(FwCfgKey.InitrdData, multiboot.info);
}
