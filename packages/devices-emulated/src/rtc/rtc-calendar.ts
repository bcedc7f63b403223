/** Calendar conversions between seconds since 1970-01-01 UTC and the RTC's time registers. */

/** CMOS indexes of the clock registers. */
export const RTC_SECONDS = 0x00;
export const RTC_SECONDS_ALARM = 0x01;
export const RTC_MINUTES = 0x02;
export const RTC_MINUTES_ALARM = 0x03;
export const RTC_HOURS = 0x04;
export const RTC_HOURS_ALARM = 0x05;
export const RTC_DAY_OF_WEEK = 0x06;
export const RTC_DAY_OF_MONTH = 0x07;
export const RTC_MONTH = 0x08;
export const RTC_YEAR = 0x09;
export const RTC_REGISTER_A = 0x0a;
export const RTC_REGISTER_B = 0x0b;
export const RTC_REGISTER_C = 0x0c;
export const RTC_REGISTER_D = 0x0d;
/** The century byte SeaBIOS and the ACPI FADT point Linux at. */
export const RTC_CENTURY = 0x32;

/** Register B bits. */
export const REG_B_SET = 0x80;
export const REG_B_PIE = 0x40;
export const REG_B_AIE = 0x20;
export const REG_B_UIE = 0x10;
export const REG_B_BINARY = 0x04;
export const REG_B_24H = 0x02;

/** The registers that hold the running time (and are rewritten by it). */
export const TIME_REGISTERS: readonly number[] = [RTC_SECONDS, RTC_MINUTES, RTC_HOURS, RTC_DAY_OF_WEEK, RTC_DAY_OF_MONTH, RTC_MONTH, RTC_YEAR, RTC_CENTURY];

export interface Fields {
  second: number;
  minute: number;
  hour: number;
  dayOfWeek: number;
  day: number;
  month: number;
  year: number;
}

export function toBcd(value: number): number {
  return ((Math.floor(value / 10) % 10) << 4) | value % 10;
}

/** Decodes a register byte; invalid BCD digits count as their nibble value, as the chip's adders would. */
export function fromRegister(value: number, binary: boolean): number {
  return binary ? value : (value >> 4) * 10 + (value & 15);
}

export function fieldsOf(seconds: number): Fields {
  const date = new Date(seconds * 1000);
  return {
    second: date.getUTCSeconds(),
    minute: date.getUTCMinutes(),
    hour: date.getUTCHours(),
    dayOfWeek: date.getUTCDay() + 1,
    day: date.getUTCDate(),
    month: date.getUTCMonth() + 1,
    year: date.getUTCFullYear(),
  };
}

/** Seconds since 1970 of the given calendar fields; out-of-range fields roll over as `Date` does. */
export function secondsOf(fields: Omit<Fields, 'dayOfWeek'>): number {
  const date = new Date(0);
  date.setUTCFullYear(fields.year, fields.month - 1, fields.day);
  date.setUTCHours(fields.hour, fields.minute, fields.second, 0);
  const ms = date.getTime();
  // Never NaN: the register values are bounded bytes, so the date is always representable.
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : 0;
}

/** Writes `seconds` into the time registers of `cmos` in the format register B selects. */
export function storeTime(cmos: Uint8Array, seconds: number): void {
  const binary = (cmos[RTC_REGISTER_B]! & REG_B_BINARY) !== 0;
  const h24 = (cmos[RTC_REGISTER_B]! & REG_B_24H) !== 0;
  const encode = (value: number) => (binary ? value : toBcd(value));
  const f = fieldsOf(seconds);
  cmos[RTC_SECONDS] = encode(f.second);
  cmos[RTC_MINUTES] = encode(f.minute);
  cmos[RTC_HOURS] = h24 ? encode(f.hour) : encode(f.hour % 12 || 12) | (f.hour >= 12 ? 0x80 : 0);
  cmos[RTC_DAY_OF_WEEK] = encode(f.dayOfWeek);
  cmos[RTC_DAY_OF_MONTH] = encode(f.day);
  cmos[RTC_MONTH] = encode(f.month);
  cmos[RTC_YEAR] = encode(((f.year % 100) + 100) % 100);
  cmos[RTC_CENTURY] = encode(Math.floor(f.year / 100) & 0x7f);
}

/** Reads the time registers of `cmos` as seconds since 1970. */
export function loadTime(cmos: Uint8Array): number {
  const binary = (cmos[RTC_REGISTER_B]! & REG_B_BINARY) !== 0;
  const h24 = (cmos[RTC_REGISTER_B]! & REG_B_24H) !== 0;
  const decode = (index: number, mask = 0xff) => fromRegister(cmos[index]! & mask, binary);
  const hour = h24 ? decode(RTC_HOURS) : (decode(RTC_HOURS, 0x7f) % 12) + (cmos[RTC_HOURS]! & 0x80 ? 12 : 0);
  return secondsOf({
    second: decode(RTC_SECONDS),
    minute: decode(RTC_MINUTES),
    hour,
    day: decode(RTC_DAY_OF_MONTH),
    month: decode(RTC_MONTH),
    year: decode(RTC_CENTURY) * 100 + decode(RTC_YEAR),
  });
}

/**
 * Whether the alarm fires at `seconds`: each alarm byte matches its field
 * or is a "don't care" code (top two bits set).
 */
export function alarmMatches(cmos: Uint8Array, seconds: number): boolean {
  const b = cmos[RTC_REGISTER_B]!;
  const binary = (b & REG_B_BINARY) !== 0;
  const h24 = (b & REG_B_24H) !== 0;
  const f = fieldsOf(seconds);
  const matches = (alarm: number, value: number) => (alarm & 0xc0) === 0xc0 || fromRegister(alarm, binary) === value;
  const alarmHour = cmos[RTC_HOURS_ALARM]!;
  const hourMatches =
    (alarmHour & 0xc0) === 0xc0 ||
    (h24 ? fromRegister(alarmHour, binary) === f.hour : (fromRegister(alarmHour & 0x7f, binary) % 12) + (alarmHour & 0x80 ? 12 : 0) === f.hour);
  return matches(cmos[RTC_SECONDS_ALARM]!, f.second) && matches(cmos[RTC_MINUTES_ALARM]!, f.minute) && hourMatches;
}
