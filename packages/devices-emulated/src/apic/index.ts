export { ApicBus } from './apic-bus.js';
export type { ApicMessage } from './apic-bus.js';
export { LocalApic } from './local-apic.js';
export type { LocalApicEvent, LocalApicOptions, LocalApicState } from './local-apic.js';
export { IoApic, IOAPIC_PINS } from './ioapic.js';
export type { IoApicEvent, IoApicOptions, IoApicState } from './ioapic.js';
export { APIC_BASE_MSR, APIC_VERSION, ApicRegister, DEFAULT_APIC_BASE, DeliveryMode, TSC_DEADLINE_MSR } from './apic-registers.js';
