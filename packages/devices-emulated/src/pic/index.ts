export * from './pic-pair.js';
export type { PicChipState } from './pic-chip.js';
