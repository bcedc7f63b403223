export * from './system-control-port-a.js';
export * from './reset-control.js';
export * from './post-code-port.js';
export * from './debug-exit.js';
