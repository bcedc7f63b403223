/** Well-known fw_cfg selector keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h). */
export const FwCfgKey = {
  Signature: 0x0000,
  Id: 0x0001,
  Uuid: 0x0002,
  RamSize: 0x0003,
  NoGraphic: 0x0004,
  CpuCount: 0x0005,
  MachineId: 0x0006,
  KernelAddress: 0x0007,
  KernelSize: 0x0008,
  KernelCommandLine: 0x0009,
  InitrdAddress: 0x000a,
  InitrdSize: 0x000b,
  BootDevice: 0x000c,
  NumaData: 0x000d,
  BootMenu: 0x000e,
  MaxCpus: 0x000f,
  KernelEntry: 0x0010,
  KernelData: 0x0011,
  InitrdData: 0x0012,
  CommandLineAddress: 0x0013,
  CommandLineSize: 0x0014,
  CommandLineData: 0x0015,
  SetupAddress: 0x0016,
  SetupSize: 0x0017,
  SetupData: 0x0018,
  FileDirectory: 0x0019,
  /** The first key handed to files. */
  FileFirst: 0x0020,
} as const;

/** Selector bit: the guest intends to write (ignored for lookup). */
export const FW_CFG_WRITE_CHANNEL = 0x4000;
/** Selector bit: architecture-specific entry. */
export const FW_CFG_ARCH_LOCAL = 0x8000;
export const FW_CFG_ENTRY_MASK = 0x3fff;

/** Feature bits of the ID entry. */
export const FwCfgFeature = { Traditional: 0x1, Dma: 0x2 } as const;

/** DMA control bits (big-endian in the FWCfgDmaAccess structure). */
export const FwCfgDmaControl = { Error: 0x01, Read: 0x02, Skip: 0x04, Select: 0x08, Write: 0x10 } as const;

/** What reading the 8 bytes of the DMA port yields: "QEMU CFG". */
export const FW_CFG_DMA_SIGNATURE: readonly number[] = Object.freeze([0x51, 0x45, 0x4d, 0x55, 0x20, 0x43, 0x46, 0x47]);

/** Longest file name, excluding the terminating NUL. */
export const FW_CFG_MAX_FILE_NAME = 55;
