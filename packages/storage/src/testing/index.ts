export { QemuTools } from './qemu-tools.js';
export { MemoryImageFile } from '../image-file.js';
export { runImg } from './img.js';
