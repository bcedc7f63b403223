export { RecordingNetworkFrontend } from './recording-network-frontend.js';
