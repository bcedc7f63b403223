export { BootError } from './errors.js';
export { PcLayout, pcRamRegions } from './machine-layout.js';
export { parseSetupHeader, XLF_KERNEL_64, type SetupHeader } from './loaders/bzimage.js';
export { BOOT_CS, BOOT_DS, LinuxBootAddresses, loadLinux, type LinuxBootOptions, type LinuxBootPlan, type LinuxEntryState } from './loaders/linux.js';
export { E820Type, buildE820, encodeE820, type E820Entry } from './firmware/e820.js';
export { buildAcpiTables, defaultAcpiConfig, systemTable, type AcpiConfig, type AcpiTables } from './firmware/acpi/tables.js';
export { buildMpTables, type MpConfig, type MpTables } from './firmware/mptable.js';
export { installPcFirmware, type PcFirmware } from './firmware/pc-firmware.js';
