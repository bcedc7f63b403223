import { BusConflictError, StateReader, encodeStateBytes, guestAddress } from '@tsvirt/interfaces';
import type { BusRegistration, GuestMemory, MmioBus, MsiTarget, Observer, PciBarDefinition, PciDevice, PciDeviceContext, PioBus } from '@tsvirt/interfaces';
import { BarWindow } from './bar-window.js';
import { MULTIFUNCTION_BIT, PciCapabilityId, PciCommand, PciConfig, PciStatus } from './config-registers.js';
import { MsiDelivery, initMsi, msiCapabilitySize } from './msi.js';
import type { MsiLayout } from './msi.js';
import { MSIX_CAPABILITY_SIZE, MsixState, initMsix } from './msix.js';

/** What a function reports: BAR placements (and refusals), for logs and tests. */
export type PciEvent =
  | { readonly kind: 'bar-mapped'; readonly slot: number; readonly fn: number; readonly bar: number; readonly address: number; readonly space: 'io' | 'memory' }
  | { readonly kind: 'bar-unmapped'; readonly slot: number; readonly fn: number; readonly bar: number }
  | { readonly kind: 'bar-conflict'; readonly slot: number; readonly fn: number; readonly bar: number; readonly address: number }
  | { readonly kind: 'hot-added' | 'hot-removed'; readonly slot: number; readonly fn: number };

/** What the bus lends each function. */
export interface PciFunctionHost {
  readonly pio: PioBus;
  readonly mmio: MmioBus;
  readonly msi: MsiTarget;
  readonly dma: GuestMemory;
  readonly observer: Observer<PciEvent>;
  /** The function's effective INTx output changed. */
  intxChanged(slot: number, fn: number, pin: number, asserted: boolean): void;
}

interface BarSlot {
  readonly index: number;
  readonly definition: PciBarDefinition;
  readonly window: BarWindow;
  registration: BusRegistration | undefined;
}

export interface PciFunctionState {
  readonly version: 1;
  readonly config: string;
  readonly intx: boolean;
  readonly msiPending: number;
  readonly msixTable: number[];
  readonly msixPending: number[];
}

export interface ParsedFunctionState {
  readonly config: Uint8Array;
  readonly intx: boolean;
  readonly msiPending: number;
  readonly msixTable: number[];
  readonly msixPending: number[];
}

const STATUS_COMMAND_RANGE_END = PciConfig.Status + 2;
const BAR_AREA_END = PciConfig.Bar0 + 24;

/**
 * The PCI core for one function: serves the standard header, BARs (sizing
 * and placement on the buses), capabilities, MSI/MSI-X and INTx for a
 * {@link PciDevice}, which answers only for its own registers.
 */
export class PciFunction {
  readonly config: Uint8Array;
  private readonly view: DataView;
  private readonly writeMask: Uint8Array;
  private readonly clearMask: Uint8Array;
  /** 1 where the core serves the byte, 0 where the device does. */
  private readonly coreOwned: Uint8Array;
  private readonly initial: Uint8Array;
  private readonly bars: BarSlot[] = [];
  private readonly barSizes: number[] = [];
  private readonly msi: MsiDelivery | undefined;
  private readonly msix: MsixState | undefined;
  private readonly vendorCapabilities: Array<{ start: number; end: number }> = [];
  private intxAsserted = false;
  private intxOutput = false;
  private attached = true;
  readonly context: PciDeviceContext;

  constructor(
    readonly device: PciDevice,
    readonly slot: number,
    readonly fn: number,
    private readonly host: PciFunctionHost,
  ) {
    const size = device.express === true ? 4096 : 256;
    this.config = new Uint8Array(size);
    this.view = new DataView(this.config.buffer);
    this.writeMask = new Uint8Array(size);
    this.clearMask = new Uint8Array(size);
    this.coreOwned = new Uint8Array(size);
    this.coreOwned.fill(1, 0, PciConfig.HeaderEnd);
    const maskView = new DataView(this.writeMask.buffer);
    this.layoutHeader(maskView);
    const capabilities = this.layoutCapabilities(maskView);
    this.msi = capabilities.msi === undefined ? undefined : new MsiDelivery(capabilities.msi, this.view, host.msi);
    this.msix = capabilities.msix === undefined ? undefined : new MsixState(capabilities.msix, this.view, host.msi, () => this.busMasterEnabled());
    this.layoutBars(maskView);
    this.initial = this.config.slice();
    this.context = {
      setIntx: (asserted) => this.setIntx(asserted),
      signalMsi: (vector) => this.signalMsi(vector),
      interruptMode: () => this.interruptMode(),
      busMasterEnabled: () => this.busMasterEnabled(),
      dma: host.dma,
    };
  }

  get configSize(): number {
    return this.config.length;
  }

  private layoutHeader(mask: DataView): void {
    const { identity, interruptPin } = this.device;
    this.view.setUint16(PciConfig.VendorId, identity.vendorId & 0xffff, true);
    this.view.setUint16(PciConfig.DeviceId, identity.deviceId & 0xffff, true);
    this.config[PciConfig.Revision] = identity.revision & 0xff;
    this.config[PciConfig.ClassCode] = identity.classCode & 0xff;
    this.view.setUint16(PciConfig.ClassCode + 1, (identity.classCode >>> 8) & 0xffff, true);
    this.config[PciConfig.HeaderType] = identity.headerType ?? 0;
    mask.setUint16(PciConfig.Command, PciCommand.Io | PciCommand.Memory | PciCommand.BusMaster | PciCommand.Serr | PciCommand.InterruptDisable, true);
    new DataView(this.clearMask.buffer).setUint16(PciConfig.Status, PciStatus.WriteOneToClear, true);
    this.writeMask[PciConfig.CacheLineSize] = 0xff;
    this.writeMask[PciConfig.InterruptLine] = 0xff;
    this.config[PciConfig.InterruptPin] = interruptPin;
    if ((identity.headerType ?? 0) === 0) {
      this.view.setUint16(PciConfig.SubsystemVendorId, (identity.subsystemVendorId ?? 0) & 0xffff, true);
      this.view.setUint16(PciConfig.SubsystemId, (identity.subsystemId ?? 0) & 0xffff, true);
    } else {
      // Type 1 (bridge): bus numbers, windows and bridge control are stored, not acted on.
      this.writeMask.fill(0xff, 0x18, 0x34);
      this.writeMask.fill(0xff, 0x38, 0x3c);
      this.writeMask[0x3e] = 0xff;
      this.writeMask[0x3f] = 0xff;
    }
  }

  private layoutCapabilities(mask: DataView): { msi?: MsiLayout; msix?: { offset: number; vectors: number; tableBar: number; tableOffset: number; pbaBar: number; pbaOffset: number } } {
    let offset: number = PciConfig.HeaderEnd;
    let previousNext: number = PciConfig.CapabilitiesPointer;
    const result: { msi?: MsiLayout; msix?: { offset: number; vectors: number; tableBar: number; tableOffset: number; pbaBar: number; pbaOffset: number } } = {};
    for (const capability of this.device.capabilities) {
      let length: number;
      let id: number;
      switch (capability.kind) {
        case 'power-management':
          id = PciCapabilityId.PowerManagement;
          length = 8;
          break;
        case 'msi':
          id = PciCapabilityId.Msi;
          length = msiCapabilitySize(capability.address64, capability.perVectorMask);
          break;
        case 'msix':
          id = PciCapabilityId.MsiX;
          length = MSIX_CAPABILITY_SIZE;
          break;
        case 'vendor':
          id = capability.id & 0xff;
          length = 2 + capability.body.length;
          break;
      }
      if (offset + length > 256) throw new RangeError(`PCI capabilities of ${this.describe()} do not fit in configuration space`);
      this.config[previousNext] = offset;
      this.config[offset] = id;
      this.coreOwned.fill(1, offset, offset + length);
      if (capability.kind === 'power-management') {
        // PMC: version 3 (PCI PM 1.2); PMCSR: power state writable, No_Soft_Reset set so D3hot->D0 keeps state.
        mask.setUint16(offset + 2, 0, true);
        this.view.setUint16(offset + 2, 0x0003, true);
        this.view.setUint16(offset + 4, 0x0008, true);
        mask.setUint16(offset + 4, 0x0003, true);
      } else if (capability.kind === 'msi') {
        if (result.msi !== undefined) throw new RangeError(`${this.describe()} declares MSI twice`);
        result.msi = { offset, vectors: capability.vectors, address64: capability.address64, perVectorMask: capability.perVectorMask };
        initMsi(result.msi, this.view, mask);
      } else if (capability.kind === 'msix') {
        if (result.msix !== undefined) throw new RangeError(`${this.describe()} declares MSI-X twice`);
        const { vectors, tableBar, tableOffset, pbaBar, pbaOffset } = capability;
        if (!Number.isInteger(vectors) || vectors < 1 || vectors > 2048) throw new RangeError(`MSI-X vector count ${vectors} out of range`);
        for (const [bar, at, length] of [
          [tableBar, tableOffset, vectors * 16],
          [pbaBar, pbaOffset, Math.ceil(vectors / 64) * 8],
        ] as const) {
          const definition = this.device.bars[bar];
          if (definition === undefined || definition.kind === 'io' || at % 8 !== 0 || at + length > definition.size) {
            throw new RangeError(`MSI-X structure at BAR ${bar}+0x${at.toString(16)} does not fit a memory BAR of ${this.describe()}`);
          }
        }
        result.msix = { offset, vectors, tableBar, tableOffset, pbaBar, pbaOffset };
        initMsix(result.msix, this.view, mask);
      } else {
        this.config.set(capability.body, offset + 2);
        this.vendorCapabilities.push({ start: offset + 2, end: offset + length });
      }
      previousNext = offset + 1;
      offset = (offset + length + 3) & ~3;
    }
    if (this.device.capabilities.length > 0) this.view.setUint16(PciConfig.Status, PciStatus.CapabilitiesList, true);
    return result;
  }

  private layoutBars(mask: DataView): void {
    const definitions = this.device.bars;
    const barCount = (this.device.identity.headerType ?? 0) === 1 ? 2 : 6;
    if (definitions.length > barCount) throw new RangeError(`${this.describe()} declares ${definitions.length} BARs; its header has ${barCount}`);
    for (let index = 0; index < definitions.length; index++) {
      const definition = definitions[index];
      if (definition === undefined) continue;
      const { kind, size } = definition;
      const minimum = kind === 'io' ? 4 : 16;
      const maximum = kind === 'io' ? 0x1_0000 : kind === 'memory32' ? 0x8000_0000 : 2 ** 52;
      if (!Number.isSafeInteger(size) || size < minimum || size > maximum || !Number.isInteger(Math.log2(size))) {
        throw new RangeError(`BAR ${index} of ${this.describe()} has invalid size ${size}`);
      }
      const at = PciConfig.Bar0 + 4 * index;
      const lowMask = size >= 0x1_0000_0000 ? 0 : (~(size - 1) >>> 0);
      if (kind === 'io') {
        this.view.setUint32(at, 0x1, true);
        mask.setUint32(at, (lowMask & 0xffff_fffc) >>> 0, true);
      } else {
        const prefetch = definition.prefetchable === true ? 0x8 : 0;
        this.view.setUint32(at, (kind === 'memory64' ? 0x4 : 0) | prefetch, true);
        mask.setUint32(at, (lowMask & 0xffff_fff0) >>> 0, true);
        if (kind === 'memory64') {
          if (index === barCount - 1 || definitions[index + 1] !== undefined) {
            throw new RangeError(`64-bit BAR ${index} of ${this.describe()} needs the next slot free`);
          }
          mask.setUint32(at + 4, size > 0x1_0000_0000 ? ~(size / 0x1_0000_0000 - 1) >>> 0 : 0xffff_ffff, true);
        }
      }
      this.barSizes[index] = size;
      const table = this.msix?.layout.tableBar === index ? this.msix : undefined;
      const pba = this.msix?.layout.pbaBar === index ? this.msix : undefined;
      this.bars.push({ index, definition, window: new BarWindow(definition, table, pba), registration: undefined });
    }
  }

  private describe(): string {
    return `PCI function ${this.slot.toString(16).padStart(2, '0')}.${this.fn}`;
  }

  setMultifunction(multifunction: boolean): void {
    const header = this.config[PciConfig.HeaderType]! & ~MULTIFUNCTION_BIT;
    this.config[PciConfig.HeaderType] = header | (multifunction ? MULTIFUNCTION_BIT : 0);
    this.initial[PciConfig.HeaderType] = this.config[PciConfig.HeaderType]!;
  }

  get command(): number {
    return this.view.getUint16(PciConfig.Command, true);
  }

  busMasterEnabled(): boolean {
    return (this.command & PciCommand.BusMaster) !== 0;
  }

  interruptMode(): 'intx' | 'msi' | 'msix' {
    if (this.msix?.enabled === true) return 'msix';
    if (this.msi?.enabled === true) return 'msi';
    return 'intx';
  }

  /** Sets RW1C error bits in Status, as a device signalling an error would. */
  raiseStatus(bits: number): void {
    const status = this.view.getUint16(PciConfig.Status, true);
    this.view.setUint16(PciConfig.Status, status | (bits & PciStatus.WriteOneToClear), true);
  }

  // ---- configuration space access ----

  /** Reads `size` bytes at `offset` (the bus guarantees alignment within a dword). */
  readConfig(offset: number, size: 1 | 2 | 4): number {
    if (offset < 0 || offset + size > this.config.length) return size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
    let owned = 0;
    for (let i = 0; i < size; i++) owned += this.coreOwned[offset + i]!;
    if (owned === size) return this.readCoreBytes(offset, size);
    if (owned === 0) return this.readDevice(offset, size);
    let value = 0;
    for (let i = 0; i < size; i++) {
      const byte = this.coreOwned[offset + i] === 1 ? this.config[offset + i]! : this.readDevice(offset + i, 1) & 0xff;
      value |= byte << (8 * i);
    }
    return value >>> 0;
  }

  private readCoreBytes(offset: number, size: number): number {
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.config[offset + i]! << (8 * i);
    return value >>> 0;
  }

  private readDevice(offset: number, size: 1 | 2 | 4): number {
    const reader = this.device.readConfig;
    if (reader === undefined) return 0;
    const value = reader.call(this.device, offset, size);
    return size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1);
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset < 0 || offset + size > this.config.length) return;
    let owned = 0;
    for (let i = 0; i < size; i++) owned += this.coreOwned[offset + i]!;
    if (owned === 0) {
      this.device.writeConfig?.(offset, size, size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1));
      return;
    }
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const byte = (value >>> (8 * i)) & 0xff;
      if (this.coreOwned[at] === 1) {
        const mask = this.writeMask[at]!;
        let next = (this.config[at]! & ~mask) | (byte & mask);
        next &= ~(byte & this.clearMask[at]!);
        this.config[at] = next;
        if (this.inVendorCapability(at)) this.device.writeConfig?.(at, 1, byte);
      } else {
        this.device.writeConfig?.(at, 1, byte);
      }
    }
    this.afterConfigWrite(offset, offset + size);
  }

  private inVendorCapability(at: number): boolean {
    for (const range of this.vendorCapabilities) if (at >= range.start && at < range.end) return true;
    return false;
  }

  private afterConfigWrite(start: number, end: number): void {
    if (start < STATUS_COMMAND_RANGE_END && end > PciConfig.Command) this.updateIntxOutput();
    if ((start < STATUS_COMMAND_RANGE_END && end > PciConfig.Command) || (start < BAR_AREA_END && end > PciConfig.Bar0)) this.updateMappings();
    if (start >= PciConfig.HeaderEnd || end > PciConfig.Command) {
      this.msi?.afterWrite();
      this.msix?.flushPending();
    }
  }

  // ---- BAR placement ----

  /** Where BAR `index` decodes now, or undefined when it does not. */
  barAddress(index: number): number | undefined {
    const slot = this.bars.find((bar) => bar.index === index);
    if (slot === undefined) return undefined;
    const size = this.barSizes[index]!;
    const at = PciConfig.Bar0 + 4 * index;
    const low = this.view.getUint32(at, true);
    const command = this.command;
    if (slot.definition.kind === 'io') {
      if ((command & PciCommand.Io) === 0) return undefined;
      const address = (low & 0xffff_fffc) >>> 0;
      return address === 0 || address + size > 0x1_0000 ? undefined : address;
    }
    if ((command & PciCommand.Memory) === 0) return undefined;
    const lowAddress = (low & 0xffff_fff0) >>> 0;
    if (slot.definition.kind === 'memory32') {
      // As QEMU: a BAR reaching the last byte below 4 GiB (the sizing pattern) does not decode.
      return lowAddress === 0 || lowAddress + size - 1 >= 0xffff_ffff ? undefined : lowAddress;
    }
    const high = this.view.getUint32(at + 4, true);
    const address = high * 0x1_0000_0000 + lowAddress;
    return address === 0 || address + size > Number.MAX_SAFE_INTEGER ? undefined : address;
  }

  private updateMappings(): void {
    if (!this.attached) return;
    for (const slot of this.bars) {
      const wanted = this.barAddress(slot.index);
      const current = slot.registration?.base;
      if (wanted === current) continue;
      if (slot.registration !== undefined) {
        slot.registration.unregister();
        slot.registration = undefined;
        this.host.observer({ kind: 'bar-unmapped', slot: this.slot, fn: this.fn, bar: slot.index });
      }
      if (wanted === undefined) continue;
      const size = this.barSizes[slot.index]!;
      try {
        slot.registration =
          slot.definition.kind === 'io'
            ? this.host.pio.register(wanted, size, slot.window, `pci ${this.slot}.${this.fn} bar${slot.index}`)
            : this.host.mmio.register(guestAddress(wanted), size, slot.window, `pci ${this.slot}.${this.fn} bar${slot.index}`);
        this.host.observer({ kind: 'bar-mapped', slot: this.slot, fn: this.fn, bar: slot.index, address: wanted, space: slot.definition.kind === 'io' ? 'io' : 'memory' });
      } catch (error) {
        // Two decoders at one address is the guest's mistake; this BAR stays off the bus.
        if (!(error instanceof BusConflictError)) throw error;
        this.host.observer({ kind: 'bar-conflict', slot: this.slot, fn: this.fn, bar: slot.index, address: wanted });
      }
    }
  }

  /** Takes every BAR off the buses and drops INTx (hot-remove). */
  detach(): void {
    for (const slot of this.bars) {
      slot.registration?.unregister();
      slot.registration = undefined;
    }
    if (this.intxOutput) this.host.intxChanged(this.slot, this.fn, this.device.interruptPin, false);
    this.intxOutput = false;
    this.attached = false;
  }

  // ---- interrupts ----

  private setIntx(asserted: boolean): void {
    this.intxAsserted = asserted;
    const status = this.view.getUint16(PciConfig.Status, true);
    this.view.setUint16(PciConfig.Status, asserted ? status | PciStatus.Interrupt : status & ~PciStatus.Interrupt, true);
    this.updateIntxOutput();
  }

  private updateIntxOutput(): void {
    const output = this.attached && this.intxAsserted && this.device.interruptPin !== 0 && (this.command & PciCommand.InterruptDisable) === 0;
    if (output === this.intxOutput) return;
    this.intxOutput = output;
    this.host.intxChanged(this.slot, this.fn, this.device.interruptPin, output);
  }

  get intxLevel(): boolean {
    return this.intxOutput;
  }

  private signalMsi(vector: number): void {
    if (this.msix?.enabled === true) {
      this.msix.signal(vector);
      return;
    }
    // MSI is a memory write by the function: nothing leaves it without Bus Master.
    if (this.msi !== undefined && this.busMasterEnabled()) this.msi.signal(vector);
  }

  // ---- reset and state ----

  /** PCI reset: the header and capabilities return to power-on values, BARs leave the buses. */
  reset(): void {
    this.config.set(this.initial);
    this.msix?.reset();
    this.intxAsserted = false;
    this.updateIntxOutput();
    this.updateMappings();
  }

  save(): PciFunctionState {
    return {
      version: 1,
      config: encodeStateBytes(this.config),
      intx: this.intxAsserted,
      msiPending: this.msi?.pendingBits() ?? 0,
      msixTable: this.msix === undefined ? [] : [...this.msix.table],
      msixPending: this.msix === undefined ? [] : [...this.msix.pending],
    };
  }

  /** Restores guest-writable bits only: read-only fields (IDs, BAR types, capability structure) keep their true values. */
  restore(state: unknown, path = 'pciFunction'): void {
    this.applyState(this.parseState(state, path));
  }

  /** Validates a saved state without changing anything. */
  parseState(state: unknown, path: string): ParsedFunctionState {
    const reader = StateReader.open(state, path, 1);
    const tableLength = this.msix?.table.length ?? 0;
    const pendingLength = this.msix?.pending.length ?? 0;
    return {
      config: reader.bytes('config', this.config.length, this.config.length),
      intx: reader.boolean('intx'),
      msiPending: reader.uint('msiPending', 0xffff_ffff),
      msixTable: reader.uintArray('msixTable', tableLength, 0xffff_ffff, tableLength),
      msixPending: reader.uintArray('msixPending', pendingLength, 0xffff_ffff, pendingLength),
    };
  }

  applyState(parsed: ParsedFunctionState): void {
    for (let at = 0; at < this.config.length; at++) {
      const keep = this.writeMask[at]! | this.clearMask[at]!;
      this.config[at] = (this.initial[at]! & ~keep) | (parsed.config[at]! & keep);
    }
    this.msi?.setPendingBits(parsed.msiPending);
    if (this.msix !== undefined) {
      this.msix.table.set(parsed.msixTable);
      for (let vector = 0; vector < this.msix.layout.vectors; vector++) this.msix.table[vector * 4 + 3] = this.msix.table[vector * 4 + 3]! & 1;
      this.msix.pending.set(parsed.msixPending);
    }
    this.setIntx(parsed.intx);
    this.updateMappings();
  }
}
