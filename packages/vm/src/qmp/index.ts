export { DEFAULT_JSON_STREAM_LIMITS, JsonStreamParser, type JsonStreamItem, type JsonStreamLimits } from './json-stream.js';
export { QmpError, QmpMonitor, QmpSession, formatQmpJson, type QmpArgument, type QmpArgumentType, type QmpCommand, type QmpErrorClass, type QmpMonitorOptions, type QmpSink, type QmpVersion } from './qmp-monitor.js';
export { VmController, VmStateError, type ControllableMachine, type RunState, type ShutdownCause, type VmControllerOptions } from './vm-controller.js';
export { QMP_QEMU_VERSION, machineQmpCommands, tsvirtQmpVersion, type MachineCommandsOptions } from './machine-commands.js';
export { QmpListener, type QmpEndpoint } from './qmp-listener.js';
export { QmpServer, type QmpServerOptions } from './qmp-server.js';
export { balloonQmpCommands, type QmpBalloon } from './balloon-commands.js';
