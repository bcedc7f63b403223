export { PortIoBus } from './port-io-bus.js';
export { MemoryMappedIoBus } from './memory-mapped-io-bus.js';
