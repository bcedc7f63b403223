export { runCli, type CommandOutput } from './cli.js';
