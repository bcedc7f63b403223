export * from './pc-testdev.js';
export * from './pci-testdev.js';
