/** Offsets and bits of the PCI configuration header (PCI Local Bus Specification 3.0, ch. 6). */
export const PciConfig = {
  VendorId: 0x00,
  DeviceId: 0x02,
  Command: 0x04,
  Status: 0x06,
  Revision: 0x08,
  ClassCode: 0x09,
  CacheLineSize: 0x0c,
  LatencyTimer: 0x0d,
  HeaderType: 0x0e,
  Bar0: 0x10,
  SubsystemVendorId: 0x2c,
  SubsystemId: 0x2e,
  CapabilitiesPointer: 0x34,
  InterruptLine: 0x3c,
  InterruptPin: 0x3d,
  /** First byte after the standard header. */
  HeaderEnd: 0x40,
} as const;

export const PciCommand = {
  Io: 0x0001,
  Memory: 0x0002,
  BusMaster: 0x0004,
  Serr: 0x0100,
  InterruptDisable: 0x0400,
} as const;

export const PciStatus = {
  Interrupt: 0x0008,
  CapabilitiesList: 0x0010,
  /** Error bits software clears by writing 1 (RW1C). */
  WriteOneToClear: 0x0100 | 0x0800 | 0x1000 | 0x2000 | 0x4000 | 0x8000,
} as const;

export const PciCapabilityId = {
  PowerManagement: 0x01,
  Msi: 0x05,
  MsiX: 0x11,
} as const;

export const MULTIFUNCTION_BIT = 0x80;
