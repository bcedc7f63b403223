export * from './character/index.js';
export * from './network/index.js';
