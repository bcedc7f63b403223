export * from './isa.js';
export * from './platform.js';
export * from './watchdog/index.js';
