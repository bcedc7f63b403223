/** Local APIC register offsets in the xAPIC page (Intel SDM vol. 3, table 11-1); x2APIC MSR = 0x800 + (offset >> 4). */
export const ApicRegister = {
  Id: 0x020,
  Version: 0x030,
  TaskPriority: 0x080,
  ArbitrationPriority: 0x090,
  ProcessorPriority: 0x0a0,
  Eoi: 0x0b0,
  RemoteRead: 0x0c0,
  LogicalDestination: 0x0d0,
  DestinationFormat: 0x0e0,
  SpuriousVector: 0x0f0,
  InService: 0x100,
  TriggerMode: 0x180,
  InterruptRequest: 0x200,
  ErrorStatus: 0x280,
  LvtCmci: 0x2f0,
  InterruptCommandLow: 0x300,
  InterruptCommandHigh: 0x310,
  LvtTimer: 0x320,
  LvtThermal: 0x330,
  LvtPerformance: 0x340,
  LvtLint0: 0x350,
  LvtLint1: 0x360,
  LvtError: 0x370,
  TimerInitialCount: 0x380,
  TimerCurrentCount: 0x390,
  TimerDivide: 0x3e0,
  /** x2APIC only (MSR 0x83F). */
  SelfIpi: 0x3f0,
} as const;

/** Version register as QEMU reports it: version 0x14, six LVT entries (max LVT index 5). */
export const APIC_VERSION = 0x0005_0014;

export const APIC_BASE_MSR = 0x1b;
export const TSC_DEADLINE_MSR = 0x6e0;
export const X2APIC_MSR_FIRST = 0x800;
export const X2APIC_MSR_LAST = 0x8ff;

export const ApicBaseBits = {
  Bsp: 0x100,
  X2Apic: 0x400,
  Enable: 0x800,
} as const;
export const DEFAULT_APIC_BASE = 0xfee0_0000;

/** LVT index order used internally. */
export const Lvt = { Cmci: 0, Timer: 1, Thermal: 2, Performance: 3, Lint0: 4, Lint1: 5, Error: 6 } as const;
export const LVT_COUNT = 7;
export const LVT_MASKED = 0x1_0000;

/** Writable bits of each LVT entry (delivery status and remote IRR are read-only). */
export const LVT_WRITE_MASK = [0x107ff, 0x700ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff] as const;

export const DeliveryMode = {
  Fixed: 0,
  LowestPriority: 1,
  Smi: 2,
  Nmi: 4,
  Init: 5,
  StartUp: 6,
  ExtInt: 7,
} as const;

export const ErrorStatus = {
  SendIllegalVector: 0x20,
  ReceiveIllegalVector: 0x40,
  IllegalRegisterAddress: 0x80,
} as const;
