// Test helpers for the platform devices: a small bounds-checked guest memory,
// a configurable PCI device, recorders for processor signals, and small
// fixtures wiring a pc's PCI side and a set of APICs.
import { GuestMemoryError } from '@tsvirt/interfaces';
import { ManualClock, RecordingIrqLine, RecordingMsiTarget } from '@tsvirt/interfaces/testing';
import { ApicBus } from '../apic/apic-bus.js';
import type { ApicMessage } from '../apic/apic-bus.js';
import { IoApic } from '../apic/ioapic.js';
import { LocalApic } from '../apic/local-apic.js';
import { MemoryMappedIoBus } from '../bus/memory-mapped-io-bus.js';
import { PortIoBus } from '../bus/port-io-bus.js';
import { PciConfigMechanism } from '../pci/config-mechanism.js';
import { I440fxHostBridge } from '../pci/i440fx.js';
import { PciBus } from '../pci/pci-bus.js';
import type { PciEvent } from '../pci/pci-function.js';
import { Piix3 } from '../pci/piix3.js';
import type {
  AccessSize,
  BusDevice,
  FrameAccess,
  GuestAddress,
  GuestMemory,
  InterruptController,
  MemoryFrame,
  PciBarDefinition,
  PciCapability,
  PciDevice,
  PciDeviceContext,
  PciIdentity,
  ProcessorSignals,
} from '@tsvirt/interfaces';

/**
 * A flat GuestMemory of `size` bytes for device tests. Every access is
 * bounds-checked; refused accesses throw {@link GuestMemoryError} and are
 * counted in `refused`, so a test can prove a device never tried one.
 */
export class FlatGuestMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  refused = 0;
  /** Bytes written through any method, for "touched nothing else" checks. */
  readonly writes: Array<{ address: number; length: number }> = [];

  constructor(readonly size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  isRam(address: GuestAddress, length = 1): boolean {
    return Number.isSafeInteger(address) && Number.isSafeInteger(length) && address >= 0 && length >= 0 && address + length <= this.size;
  }

  private check(address: number, length: number): void {
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(length) || address < 0 || length < 0) {
      this.refused++;
      throw new GuestMemoryError('invalid', address, length);
    }
    if (address + length > this.size) {
      this.refused++;
      throw new GuestMemoryError('out-of-range', address, length);
    }
  }

  read(address: GuestAddress, into: Uint8Array): void {
    this.check(address, into.length);
    into.set(this.bytes.subarray(address, address + into.length));
  }

  write(address: GuestAddress, from: Uint8Array): void {
    this.check(address, from.length);
    this.bytes.set(from, address);
    this.writes.push({ address, length: from.length });
  }

  fill(address: GuestAddress, length: number, value = 0): void {
    this.check(address, length);
    this.bytes.fill(value, address, address + length);
    this.writes.push({ address, length });
  }

  readU8(address: GuestAddress): number {
    this.check(address, 1);
    return this.bytes[address]!;
  }
  readU16(address: GuestAddress): number {
    this.check(address, 2);
    return this.view.getUint16(address, true);
  }
  readU32(address: GuestAddress): number {
    this.check(address, 4);
    return this.view.getUint32(address, true);
  }
  readU64(address: GuestAddress): bigint {
    this.check(address, 8);
    return this.view.getBigUint64(address, true);
  }
  writeU8(address: GuestAddress, value: number): void {
    this.check(address, 1);
    this.bytes[address] = value;
    this.writes.push({ address, length: 1 });
  }
  writeU16(address: GuestAddress, value: number): void {
    this.check(address, 2);
    this.view.setUint16(address, value, true);
    this.writes.push({ address, length: 2 });
  }
  writeU32(address: GuestAddress, value: number): void {
    this.check(address, 4);
    this.view.setUint32(address, value, true);
    this.writes.push({ address, length: 4 });
  }
  writeU64(address: GuestAddress, value: bigint): void {
    this.check(address, 8);
    this.view.setBigUint64(address, value, true);
    this.writes.push({ address, length: 8 });
  }

  frameOf(_address: GuestAddress, _access: FrameAccess): MemoryFrame | undefined {
    return undefined;
  }
  onInvalidate(): () => void {
    return () => {};
  }
  startDirtyLog(): void {}
  stopDirtyLog(): void {}
  readonly dirtyLogging = false;
  fetchAndClearDirty(): Uint32Array {
    throw new Error('dirty logging is off');
  }
  discard(address: GuestAddress, length: number): void {
    this.fill(address, length, 0);
  }
}

/** Byte-addressed registers for a test BAR: reads return what was written. */
export class ScratchRegisters implements BusDevice {
  readonly bytes: Uint8Array;
  readonly accesses: Array<{ kind: 'read' | 'write'; offset: number; size: AccessSize }> = [];

  constructor(readonly length: number) {
    this.bytes = new Uint8Array(length);
  }

  read(offset: number, size: AccessSize): number {
    this.accesses.push({ kind: 'read', offset, size });
    let value = 0;
    for (let i = 0; i < size; i++) value |= (this.bytes[offset + i] ?? 0xff) << (8 * i);
    return value >>> 0;
  }

  write(offset: number, size: AccessSize, value: number): void {
    this.accesses.push({ kind: 'write', offset, size });
    for (let i = 0; i < size; i++) if (offset + i < this.length) this.bytes[offset + i] = (value >>> (8 * i)) & 0xff;
  }
}

export interface TestPciDeviceOptions {
  readonly identity?: Partial<PciIdentity>;
  readonly bars?: ReadonlyArray<{ kind: PciBarDefinition['kind']; size: number; prefetchable?: boolean } | undefined>;
  readonly capabilities?: readonly PciCapability[];
  readonly interruptPin?: 0 | 1 | 2 | 3 | 4;
  readonly express?: boolean;
}

/** A PCI function with scratch BARs and a scratch device-specific config area, recording what the core gives it. */
export class TestPciDevice implements PciDevice {
  readonly identity: PciIdentity;
  readonly bars: readonly (PciBarDefinition | undefined)[];
  readonly barRegisters: readonly (ScratchRegisters | undefined)[];
  readonly capabilities: readonly PciCapability[];
  readonly interruptPin: 0 | 1 | 2 | 3 | 4;
  readonly express: boolean;
  readonly configWrites: Array<{ offset: number; size: number; value: number }> = [];
  context: PciDeviceContext | undefined;
  resets = 0;

  constructor(options: TestPciDeviceOptions = {}) {
    this.identity = { vendorId: 0x1234, deviceId: 0x5678, classCode: 0x02_00_00, revision: 1, ...options.identity };
    this.barRegisters = (options.bars ?? []).map((bar) => (bar === undefined ? undefined : new ScratchRegisters(Math.min(bar.size, 0x1_0000))));
    this.bars = (options.bars ?? []).map((bar, index) =>
      bar === undefined ? undefined : { kind: bar.kind, size: bar.size, prefetchable: bar.prefetchable ?? false, device: this.barRegisters[index]! },
    );
    this.capabilities = options.capabilities ?? [];
    this.interruptPin = options.interruptPin ?? 1;
    this.express = options.express ?? false;
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    // A recognisable pattern: each byte is its own offset.
    let value = 0;
    for (let i = 0; i < size; i++) value |= ((offset + i) & 0xff) << (8 * i);
    return value >>> 0;
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    this.configWrites.push({ offset, size, value });
  }

  attach(context: PciDeviceContext): void {
    this.context = context;
  }

  reset(): void {
    this.resets++;
  }
}

/** Records the signals a local APIC sends its vCPU. */
export class RecordingProcessorSignals implements ProcessorSignals {
  readonly log: string[] = [];
  nmi(): void {
    this.log.push('nmi');
  }
  init(): void {
    this.log.push('init');
  }
  startup(vector: number): void {
    this.log.push(`startup:${vector}`);
  }
  wake(): void {
    this.log.push('wake');
  }
  count(kind: string): number {
    return this.log.filter((entry) => entry === kind).length;
  }
}

/** A PIC stand-in for ExtINT delivery: a queue of vectors. */
export class QueuedInterruptController implements InterruptController {
  readonly queue: number[] = [];
  pending(): boolean {
    return this.queue.length > 0;
  }
  acknowledge(): number {
    return this.queue.shift() ?? 0x0f;
  }
}

/**
 * A pc's PCI side on fresh buses: i440FX at 00:00.0, PIIX3 at 00:01.0 as
 * the INTx router, configuration mechanism #1 at 0xCF8/0xCFC, ELCR at 0x4D0,
 * with `read`/`write` helpers that go through the configuration ports.
 */
export function createPcPciFixture() {
  const pio = new PortIoBus();
  const mmio = new MemoryMappedIoBus();
  const msi = new RecordingMsiTarget();
  const dma = new FlatGuestMemory(0x1_0000);
  const events: PciEvent[] = [];
  const bus = new PciBus({ pio, mmio, dma, msi, observer: (event) => events.push(event) });
  const isaIrqs = Array.from({ length: 16 }, () => new RecordingIrqLine());
  const elcrMasks: number[] = [];
  const piix3 = new Piix3({ isaIrqs, onElcrChange: (mask) => elcrMasks.push(mask) });
  const hostBridge = new I440fxHostBridge();
  bus.plug(hostBridge, 0, 0);
  bus.plug(piix3, 1, 0, { multifunction: true });
  bus.setInterruptRouter(piix3);
  const mechanism = new PciConfigMechanism(bus);
  pio.register(0xcf8, 4, mechanism.addressPort, 'pci-config-address');
  pio.register(0xcfc, 4, mechanism.dataPort, 'pci-config-data');
  pio.register(0x4d0, 2, piix3.elcrPorts, 'elcr');
  const configAddress = (slot: number, fn: number, offset: number) => (0x8000_0000 | (slot << 11) | (fn << 8) | (offset & 0xfc)) >>> 0;
  const read = (slot: number, fn: number, offset: number, size: 1 | 2 | 4 = 4) => {
    pio.write(0xcf8, 4, configAddress(slot, fn, offset));
    return pio.read(0xcfc + (offset & 3), size);
  };
  const write = (slot: number, fn: number, offset: number, size: 1 | 2 | 4, value: number) => {
    pio.write(0xcf8, 4, configAddress(slot, fn, offset));
    pio.write(0xcfc + (offset & 3), size, value);
  };
  return { pio, mmio, msi, dma, events, bus, isaIrqs, elcrMasks, piix3, hostBridge, mechanism, read, write };
}

/** `count` local APICs (APIC 0 the BSP, with a queued PIC on LINT0) and an IOAPIC on one ApicBus. */
export function createApicFixture(count = 1, clock = new ManualClock()) {
  const bus = new ApicBus();
  const pic = new QueuedInterruptController();
  const signals = Array.from({ length: count }, () => new RecordingProcessorSignals());
  const apics = signals.map((s, id) => new LocalApic({ id, bootstrap: id === 0, clock, bus, signals: s, pic: id === 0 ? pic : undefined, tscFrequencyHz: 2e9 }));
  const ioapic = new IoApic({ bus });
  const reg = (apic: LocalApic) => ({
    read: (offset: number) => apic.mmio.read(offset, 4),
    write: (offset: number, value: number) => apic.mmio.write(offset, 4, value >>> 0),
  });
  return { clock, bus, pic, signals, apics, ioapic, reg };
}

/** An APIC bus that records what an IOAPIC sends instead of delivering it. */
export class RecordingApicBus extends ApicBus {
  readonly sent: ApicMessage[] = [];
  override send(message: ApicMessage): void {
    this.sent.push(message);
  }
}
