export * from './uart.js';
export * from './backends/index.js';
