export { FakeVm, firstDifferentPage, type FakeVmOptions } from './fake-vm.js';
export { nextRandom, workloadTarget, type DirtyPattern, type DirtyWorkload } from './workload.js';
export { runSimulatedMigration, simulatedTiming, type SimulatedMigrationOptions, type SimulatedMigrationResult } from './simulation.js';
export { RecordingChannel, replayChannel } from './recording-channel.js';
export { HostClock } from './host-clock.js';
export { settleOnClock, type Settlement, type SettleOnClockOptions } from './settle-on-clock.js';
