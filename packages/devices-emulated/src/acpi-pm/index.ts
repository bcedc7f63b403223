export { AcpiPm, ACPI_DISABLE_COMMAND, ACPI_ENABLE_COMMAND, Pm1Status, SleepType } from './acpi-pm.js';
export type { AcpiPmEvent, AcpiPmOptions, AcpiPmState } from './acpi-pm.js';
export { PM_TIMER_HZ } from './pm-timer-clock.js';
