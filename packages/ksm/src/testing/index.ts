export { ksmModelCommands, runKsmModel, type KsmModelCommand, type KsmModelOptions, type KsmModelReport } from './model.js';
export { identicalPagesWorkload, type IdenticalPagesOptions, type IdenticalPagesWorkload } from './workload.js';
