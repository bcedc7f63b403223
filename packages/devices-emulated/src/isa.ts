// Devices on the ISA side of the PIIX3: PIC, PIT, RTC, UART, i8042, system ports.
export * from './pic/index.js';
export * from './pit/index.js';
export * from './rtc/index.js';
export * from './uart/index.js';
export * from './i8042/index.js';
export * from './system-ports/index.js';
// QEMU's test devices (kvm-unit-tests): pc-testdev on the ISA side, pci-testdev on PCI.
export * from './test-devices/index.js';
