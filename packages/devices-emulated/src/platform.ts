// Buses, PCI, APICs, HPET, ACPI PM and fw_cfg.
export * from './bus/index.js';
export * from './pci/index.js';
export * from './apic/index.js';
export * from './hpet/index.js';
export * from './acpi-pm/index.js';
export * from './fw-cfg/index.js';
