import type { AccessSize, BusDevice, IrqLine } from '@tsvirt/interfaces';

/** Where QEMU's pc-testdev answers (hw/misc/pc-testdev.c): fixed, it has no properties. */
export const PcTestdevPort = {
  /** A 32-bit scratch register, read and written at any width and byte offset. */
  data: 0xe0,
  /** "Flush page": a 32-bit guest-physical address whose host mapping QEMU write-protects and restores. */
  flushPage: 0xe4,
  /** The same scratch register, accessed a byte at a time. */
  dataByte: 0xe8,
  /** 24 ports, one for each interrupt line: a write of non-zero raises the line, zero lowers it. */
  irqLines: 0x2000,
} as const;
export const PC_TESTDEV_IRQ_LINES = 24;
/** 64 KiB of device memory at 0xFF000000 that reads back what was written (MMIO, not RAM: every access reaches the device). */
export const PC_TESTDEV_MEMORY_BASE = 0xff00_0000;
export const PC_TESTDEV_MEMORY_SIZE = 0x1_0000;

export interface PcTestdevOptions {
  /** Interrupt lines 0–23 as the ISA bus numbers them (GSIs on a PC); a missing one ignores writes. */
  readonly irqLines: readonly (IrqLine | undefined)[];
}

/**
 * QEMU's `pc-testdev`, the ISA device kvm-unit-tests drives to test port I/O
 * emulation (string I/O, every width, the real-mode test's IN/OUT), MMIO
 * emulation (its memory at 0xFF000000) and interrupt delivery (its IRQ lines).
 * The flush-page port exists only to make KVM take a fault on the next access;
 * an emulator has no host mapping to protect, so it accepts and ignores it.
 */
export class PcTestdev {
  private scratch = 0;
  private readonly memory = new Uint8Array(PC_TESTDEV_MEMORY_SIZE);
  private readonly memoryView = new DataView(this.memory.buffer);
  /** The scratch register at 0xE0 and 0xE8 (both see the same value). */
  readonly dataPort: BusDevice;
  readonly flushPagePort: BusDevice;
  readonly irqPorts: BusDevice;
  readonly mmio: BusDevice;

  constructor(private readonly options: PcTestdevOptions) {
    const data: BusDevice = {
      read: (offset, size) => {
        const shift = (offset & 3) * 8;
        return ((this.scratch >>> shift) & widthMask(size, shift)) >>> 0;
      },
      write: (offset, size, value) => {
        const shift = (offset & 3) * 8;
        const mask = (widthMask(size, shift) << shift) >>> 0;
        this.scratch = ((this.scratch & ~mask) | ((value << shift) & mask)) >>> 0;
      },
    };
    this.dataPort = data;
    this.flushPagePort = { read: allOnes, write: () => {} };
    this.irqPorts = {
      read: allOnes,
      write: (offset, _size, value) => this.options.irqLines[offset]?.setLevel(value !== 0),
    };
    this.mmio = {
      read: (offset, size) => (size === 1 ? this.memory[offset]! : size === 2 ? this.memoryView.getUint16(offset, true) : this.memoryView.getUint32(offset, true)),
      write: (offset, size, value) => {
        if (size === 1) this.memory[offset] = value;
        else if (size === 2) this.memoryView.setUint16(offset, value, true);
        else this.memoryView.setUint32(offset, value >>> 0, true);
      },
    };
  }
}

/** The bits of a `size`-byte access that fit in the 32-bit register from bit `shift` on. */
function widthMask(size: AccessSize, shift: number): number {
  const bits = Math.min(size * 8, 32 - shift);
  return bits >= 32 ? 0xffff_ffff : (1 << bits) - 1;
}

function allOnes(_offset: number, size: AccessSize): number {
  return size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
}
