export { RecordingIrqLine, RecordingMsiTarget } from './irq.js';
export { ManualClock } from './manual-clock.js';
export { MemoryBlockBackend } from './memory-block-backend.js';
export { MapBus } from './map-bus.js';
export { blockBackendContract } from './block-backend-contract.js';
export type { BenchmarkReport } from './benchmark-report.js';
export { MemoryCharacterBackend } from '../memory-character-backend.js';
export { MemoryNetworkBackend } from './memory-network-backend.js';
export { RecordingCharacterFrontend } from './recording-character-frontend.js';
