export * from './isa.js';
export * from './platform.js';
