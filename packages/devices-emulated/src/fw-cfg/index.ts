export { FwCfg } from './fw-cfg.js';
export type { FwCfgEvent, FwCfgOptions, FwCfgState } from './fw-cfg.js';
export { FW_CFG_ARCH_LOCAL, FW_CFG_DMA_SIGNATURE, FW_CFG_WRITE_CHANNEL, FwCfgDmaControl, FwCfgFeature, FwCfgKey } from './fw-cfg-keys.js';
