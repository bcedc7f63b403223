/** The ACPI PM timer runs at 3.579545 MHz (ACPI 6.5, 4.8.3.3). */
export const PM_TIMER_HZ = 3_579_545;
const NS_PER_SECOND = 1_000_000_000;

/** PM timer ticks since clock time 0, exact for any time below 2^53 ns. */
export function pmTicksAt(nanoseconds: number): number {
  const seconds = Math.floor(nanoseconds / NS_PER_SECOND);
  const rest = nanoseconds - seconds * NS_PER_SECOND;
  return seconds * PM_TIMER_HZ + Math.floor((rest * PM_TIMER_HZ) / NS_PER_SECOND);
}

/** The first clock time (ns) at which the tick count reaches `ticks`. */
export function nanosecondsAtTick(ticks: number): number {
  const seconds = Math.floor(ticks / PM_TIMER_HZ);
  const rest = ticks - seconds * PM_TIMER_HZ;
  return seconds * NS_PER_SECOND + Math.ceil((rest * NS_PER_SECOND) / PM_TIMER_HZ);
}
