export * from './pipe-backend.js';
export * from './file-backend.js';
export * from './tcp-backend.js';
export * from './stdio-backend.js';
export { InputQueue } from './input-queue.js';
