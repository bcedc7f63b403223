export * from './uart.js';
