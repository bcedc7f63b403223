export * from './oracle/index.js';
export { assemble, nasmAvailable } from './assemble.js';
export { createFlatMachine, runAssembly, FLAT_PAGE_TABLES, TEST_CODE_ADDRESS, type AssemblyRun, type FlatMachine, type FlatMachineOptions } from './flat-machine.js';
export { InterpreterCaseRunner, type InterpreterOutcome } from './interpreter-case.js';
