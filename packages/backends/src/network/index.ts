export { FrameLink, type NetworkBackendEvent, type NetworkBackendStatistics } from './frame-link.js';
export { encodeStreamFrame, FramingError, StreamFrameDecoder } from './stream-framing.js';
export { describeAddress, type SocketAddress } from './socket-address.js';
export { StreamNetworkBackend, type StreamNetworkBackendOptions } from './stream-backend.js';
export { DgramNetworkBackend, type DgramNetworkBackendOptions } from './dgram-backend.js';
export { type HostForward, PasstError, PasstNetworkBackend, type PasstNetworkBackendOptions } from './passt-backend.js';
