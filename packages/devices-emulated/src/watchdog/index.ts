export * from './i6300esb.js';
export * from './ib700.js';
