import { StateReader, encodeStateBytes } from '@tsvirt/interfaces';
import type { PciBarDefinition, PciCapability, PciDevice, PciDeviceContext, PciIdentity } from '@tsvirt/interfaces';

/** Programmable Attribute Map registers 0x59-0x5F: read/write enables for the legacy BIOS and option ROM areas. */
export const I440FX_PAM = 0x59;
export const I440FX_PAM_COUNT = 7;
/** System Management RAM control. */
export const I440FX_SMRAM = 0x72;

const SMRAM_D_OPEN = 0x40;
const SMRAM_D_CLS = 0x20;
const SMRAM_D_LCK = 0x10;
const SMRAM_G_SMRAME = 0x08;
/** C_BASE_SEG: hard-wired 010b, SMRAM at 0xA0000. */
const SMRAM_BASE_SEGMENT = 0x02;

/** What the VM needs to remap the legacy memory areas. */
export interface I440fxMemoryMap {
  /** PAM0-PAM6 as the guest programmed them (0x59 carries only the upper nibble). */
  readonly pam: readonly number[];
  readonly smram: number;
}

export interface I440fxOptions {
  /** Called after the guest changes a PAM or the SMRAM register. */
  readonly onMemoryMapChange?: (map: I440fxMemoryMap) => void;
}

export interface I440fxState {
  readonly version: 1;
  readonly registers: string;
}

/**
 * The i440FX PCI and memory controller (host bridge) at 00:00.0,
 * 8086:1237 revision 2. Device-specific registers are stored; PAM and SMRAM
 * are reported to the VM, which owns the memory map.
 */
export class I440fxHostBridge implements PciDevice {
  readonly identity: PciIdentity = { vendorId: 0x8086, deviceId: 0x1237, classCode: 0x06_00_00, revision: 0x02 };
  readonly bars: readonly (PciBarDefinition | undefined)[] = [];
  readonly capabilities: readonly PciCapability[] = [];
  readonly interruptPin = 0;
  /** Bytes 0x40-0xFF (index 0 is offset 0x40). */
  private readonly registers = new Uint8Array(0xc0);
  private readonly onMemoryMapChange: (map: I440fxMemoryMap) => void;

  constructor(options: I440fxOptions = {}) {
    this.onMemoryMapChange = options.onMemoryMapChange ?? (() => {});
    this.reset();
  }

  attach(_context: PciDeviceContext): void {}

  reset(): void {
    this.registers.fill(0);
    this.registers[I440FX_SMRAM - 0x40] = SMRAM_BASE_SEGMENT;
  }

  get memoryMap(): I440fxMemoryMap {
    return { pam: [...this.registers.subarray(I440FX_PAM - 0x40, I440FX_PAM - 0x40 + I440FX_PAM_COUNT)], smram: this.registers[I440FX_SMRAM - 0x40]! };
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    let value = 0;
    for (let i = 0; i < size; i++) value |= (this.registers[offset + i - 0x40] ?? 0) << (8 * i);
    return value >>> 0;
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    let mapChanged = false;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (at < 0x40 || at > 0xff) continue;
      const byte = (value >>> (8 * i)) & 0xff;
      if (at >= I440FX_PAM && at < I440FX_PAM + I440FX_PAM_COUNT) {
        // Each nibble has RE (bit 0) and WE (bit 1); PAM0's low nibble is reserved.
        this.registers[at - 0x40] = byte & (at === I440FX_PAM ? 0x30 : 0x33);
        mapChanged = true;
      } else if (at === I440FX_SMRAM) {
        this.writeSmram(byte);
        mapChanged = true;
      } else {
        this.registers[at - 0x40] = byte;
      }
    }
    if (mapChanged) this.onMemoryMapChange(this.memoryMap);
  }

  /** D_LCK locks D_OPEN (forced closed), G_SMRAME and itself until reset (440FX datasheet, SMRAM register). */
  private writeSmram(byte: number): void {
    const index = I440FX_SMRAM - 0x40;
    const current = this.registers[index]!;
    if ((current & SMRAM_D_LCK) !== 0) {
      this.registers[index] = (current & ~SMRAM_D_CLS) | (byte & SMRAM_D_CLS);
      return;
    }
    let next = (byte & (SMRAM_D_OPEN | SMRAM_D_CLS | SMRAM_D_LCK | SMRAM_G_SMRAME)) | SMRAM_BASE_SEGMENT;
    if ((next & SMRAM_D_LCK) !== 0) next &= ~SMRAM_D_OPEN;
    this.registers[index] = next;
  }

  save(): I440fxState {
    return { version: 1, registers: encodeStateBytes(this.registers) };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'i440fx', 1);
    const registers = reader.bytes('registers', 0xc0, 0xc0);
    const smram = registers[I440FX_SMRAM - 0x40]!;
    if ((smram & 0x87) !== SMRAM_BASE_SEGMENT || ((smram & SMRAM_D_LCK) !== 0 && (smram & SMRAM_D_OPEN) !== 0)) reader.fail('registers', 'SMRAM register holds bits the hardware cannot');
    for (let i = 0; i < I440FX_PAM_COUNT; i++) {
      if ((registers[I440FX_PAM - 0x40 + i]! & ~(i === 0 ? 0x30 : 0x33)) !== 0) reader.fail('registers', `PAM${i} has reserved bits set`);
    }
    this.registers.set(registers);
    this.onMemoryMapChange(this.memoryMap);
  }
}
