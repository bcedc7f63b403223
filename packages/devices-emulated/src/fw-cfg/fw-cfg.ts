import { StateReader, guestAddress, ignoreEvents } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice, GuestMemory, Observer } from '@tsvirt/interfaces';
import { FW_CFG_ARCH_LOCAL, FW_CFG_DMA_SIGNATURE, FW_CFG_ENTRY_MASK, FW_CFG_MAX_FILE_NAME, FwCfgDmaControl, FwCfgFeature, FwCfgKey } from './fw-cfg-keys.js';

export type FwCfgEvent = { readonly kind: 'dma'; readonly address: number; readonly control: number; readonly length: number; readonly error: boolean };

export interface FwCfgOptions {
  /** Guest memory the DMA interface reads its descriptors from and copies into. */
  readonly dma: GuestMemory;
  /** How many file keys exist after FW_CFG_FILE_FIRST; QEMU's default is 0x20 (newer machine types raise it). */
  readonly fileSlots?: number;
  readonly observer?: Observer<FwCfgEvent>;
}

export interface FwCfgState {
  readonly version: 1;
  /** The selected key, or -1 when the selection is invalid. */
  readonly selected: number;
  readonly offset: number;
  readonly dmaAddressHigh: number;
}

const INVALID = -1;
/** sizeof(FWCfgDmaAccess): control (4), length (4), address (8), all big-endian. */
const DMA_DESCRIPTOR_SIZE = 16;

/**
 * QEMU's firmware configuration interface on I/O ports: {@link FwCfg.ioPorts}
 * at 0x510 (selector as a 16-bit write at +0, data bytes read at +1) and
 * {@link FwCfg.dmaPort} at 0x514 (length 8: the big-endian 64-bit address of
 * an FWCfgDmaAccess descriptor, written high half first; the low half starts
 * the transfer). Items are read-only for the guest: data-port writes are
 * ignored and DMA writes fail with the error bit, as in QEMU.
 */
export class FwCfg {
  private readonly entries = new Map<number, Uint8Array>();
  private readonly files: Array<{ name: string; key: number }> = [];
  private selected = INVALID;
  private offset = 0;
  private dmaAddressHigh = 0;
  private readonly dma: GuestMemory;
  private readonly fileSlots: number;
  private readonly observer: Observer<FwCfgEvent>;
  readonly ioPorts: BusDevice;
  readonly dmaPort: BusDevice;

  constructor(options: FwCfgOptions) {
    this.dma = options.dma;
    this.fileSlots = options.fileSlots ?? 0x20;
    this.observer = options.observer ?? ignoreEvents;
    this.entries.set(FwCfgKey.Signature, new TextEncoder().encode('QEMU'));
    const id = new Uint8Array(4);
    new DataView(id.buffer).setUint32(0, FwCfgFeature.Traditional | FwCfgFeature.Dma, true);
    this.entries.set(FwCfgKey.Id, id);
    this.rebuildDirectory();
    this.ioPorts = {
      read: (_offset: number, size: AccessSize) => (size === 1 ? this.readDataByte() : size === 2 ? 0xffff : 0xffff_ffff),
      write: (offset: number, size: AccessSize, value: number) => {
        if (offset === 0 && size === 2) this.select(value & 0xffff);
        // Byte writes to the data port are ignored (QEMU >= 2.4).
      },
    };
    this.dmaPort = {
      read: (offset: number, size: AccessSize) => {
        let value = 0;
        for (let i = 0; i < size; i++) value |= (FW_CFG_DMA_SIGNATURE[offset + i] ?? 0) << (8 * i);
        return value >>> 0;
      },
      write: (offset: number, size: AccessSize, value: number) => {
        if (size !== 4) return;
        // The guest stores big-endian halves; the bus hands us little-endian values.
        const half = byteSwap32(value);
        if (offset === 0) this.dmaAddressHigh = half;
        else if (offset === 4) this.startDma(this.dmaAddressHigh * 0x1_0000_0000 + half);
      },
    };
  }

  /** Adds or replaces a numbered item (RAM size, CPU count, kernel command line...). */
  addBytes(key: number, bytes: Uint8Array): void {
    if (!Number.isInteger(key) || key < 0 || key > 0xffff || (key & FW_CFG_ENTRY_MASK) === FwCfgKey.FileDirectory || ((key & ~FW_CFG_ARCH_LOCAL) >= FwCfgKey.FileFirst && (key & FW_CFG_ARCH_LOCAL) === 0)) {
      throw new RangeError(`fw_cfg key 0x${key.toString(16)} is not a numbered item key`);
    }
    this.entries.set(key & (FW_CFG_ARCH_LOCAL | FW_CFG_ENTRY_MASK), bytes.slice());
  }

  /** Adds a named file (e.g. "etc/acpi/tables"); returns its key. */
  addFile(name: string, bytes: Uint8Array): number {
    const encoded = new TextEncoder().encode(name);
    if (encoded.length === 0 || encoded.length > FW_CFG_MAX_FILE_NAME || encoded.includes(0)) throw new RangeError(`fw_cfg file name ${JSON.stringify(name)} must be 1-${FW_CFG_MAX_FILE_NAME} bytes without NUL`);
    if (this.files.some((file) => file.name === name)) throw new RangeError(`fw_cfg file ${name} already exists`);
    if (this.files.length >= this.fileSlots) throw new RangeError(`fw_cfg has only ${this.fileSlots} file slots`);
    const key = FwCfgKey.FileFirst + this.files.length;
    this.files.push({ name, key });
    this.entries.set(key, bytes.slice());
    this.rebuildDirectory();
    return key;
  }

  /** FW_CFG_FILE_DIR: a big-endian count, then {size, select, reserved, name[56]} sorted by name. */
  private rebuildDirectory(): void {
    const sorted = [...this.files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const directory = new Uint8Array(4 + 64 * sorted.length);
    const view = new DataView(directory.buffer);
    view.setUint32(0, sorted.length, false);
    sorted.forEach((file, index) => {
      const at = 4 + 64 * index;
      view.setUint32(at, this.entries.get(file.key)!.length, false);
      view.setUint16(at + 4, file.key, false);
      directory.set(new TextEncoder().encode(file.name), at + 8);
    });
    this.entries.set(FwCfgKey.FileDirectory, directory);
  }

  private maxEntry(): number {
    return FwCfgKey.FileFirst + this.fileSlots;
  }

  private select(key: number): void {
    this.offset = 0;
    this.selected = (key & FW_CFG_ENTRY_MASK) >= this.maxEntry() ? INVALID : key;
  }

  private current(): Uint8Array | undefined {
    if (this.selected === INVALID) return undefined;
    return this.entries.get(this.selected & (FW_CFG_ARCH_LOCAL | FW_CFG_ENTRY_MASK));
  }

  private readDataByte(): number {
    const entry = this.current();
    if (entry === undefined || this.offset >= entry.length) return 0;
    return entry[this.offset++]!;
  }

  // ---- DMA ----

  private startDma(descriptor: number): void {
    this.dmaAddressHigh = 0;
    if (!Number.isSafeInteger(descriptor) || !this.dma.isRam(guestAddress(descriptor), DMA_DESCRIPTOR_SIZE)) {
      this.observer({ kind: 'dma', address: descriptor, control: 0, length: 0, error: true });
      return;
    }
    const header = new Uint8Array(DMA_DESCRIPTOR_SIZE);
    this.dma.read(guestAddress(descriptor), header);
    const view = new DataView(header.buffer);
    const control = view.getUint32(0, false);
    let length = view.getUint32(4, false);
    const addressHigh = view.getUint32(8, false);
    let address = addressHigh * 0x1_0000_0000 + view.getUint32(12, false);
    if ((control & FwCfgDmaControl.Select) !== 0) this.select(control >>> 16);
    const read = (control & FwCfgDmaControl.Read) !== 0;
    const write = !read && (control & FwCfgDmaControl.Write) !== 0;
    if (!read && !write && (control & FwCfgDmaControl.Skip) === 0) length = 0;
    let error = false;
    while (length > 0 && !error) {
      const entry = this.current();
      let chunk: number;
      if (entry === undefined || this.offset >= entry.length) {
        chunk = length;
        if (read) error = !this.copyOut(address, undefined, chunk);
        if (write) error = true;
      } else {
        chunk = Math.min(length, entry.length - this.offset);
        if (read) error = !this.copyOut(address, entry.subarray(this.offset, this.offset + chunk), chunk);
        // Every item is read-only for the guest.
        if (write) error = true;
        this.offset += chunk;
      }
      address += chunk;
      length -= chunk;
    }
    const status = new Uint8Array(4);
    new DataView(status.buffer).setUint32(0, error ? FwCfgDmaControl.Error : 0, false);
    this.dma.write(guestAddress(descriptor), status);
    this.observer({ kind: 'dma', address: descriptor, control, length: view.getUint32(4, false), error });
  }

  /** Copies `bytes` (or zeros) to guest RAM at `address`; false when any of it is not RAM. */
  private copyOut(address: number, bytes: Uint8Array | undefined, length: number): boolean {
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(address + length) || !this.dma.isRam(guestAddress(address), length)) return false;
    if (bytes === undefined) this.dma.fill(guestAddress(address), length, 0);
    else this.dma.write(guestAddress(address), bytes);
    return true;
  }

  // ---- state ----

  /** Only the guest-visible cursor is state; items are configuration the VM adds again. */
  save(): FwCfgState {
    return { version: 1, selected: this.selected, offset: this.offset, dmaAddressHigh: this.dmaAddressHigh };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'fwCfg', 1);
    const selected = reader.int('selected', INVALID, 0xffff);
    if (selected !== INVALID && (selected & FW_CFG_ENTRY_MASK) >= this.maxEntry()) reader.fail('selected', 'beyond the last key');
    const offset = reader.uint('offset', 0xffff_ffff);
    const dmaAddressHigh = reader.uint('dmaAddressHigh', 0xffff_ffff);
    this.selected = selected;
    this.offset = offset;
    this.dmaAddressHigh = dmaAddressHigh;
  }
}

function byteSwap32(value: number): number {
  return (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24)) >>> 0;
}
