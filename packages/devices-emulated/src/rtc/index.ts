export * from './rtc.js';
export * from './cmos-layout.js';
export { RTC_CENTURY, RTC_REGISTER_A, RTC_REGISTER_B, RTC_REGISTER_C, RTC_REGISTER_D } from './rtc-calendar.js';
