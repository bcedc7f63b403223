import { StateReader, encodeStateBytes } from '@tsvirt/interfaces';
import type { AccessSize, BusDevice, IrqLine, PciBarDefinition, PciCapability, PciDevice, PciDeviceContext, PciIdentity } from '@tsvirt/interfaces';
import type { PciInterruptRouter } from './pci-bus.js';

/** PIRQA-D route control registers. */
export const PIIX3_PIRQ_ROUTE = 0x60;
const ROUTE_DISABLE = 0x80;
/** Bits 6:4 of a route register are reserved. */
const ROUTE_WRITE_MASK = 0x8f;
/** ELCR bits that exist: IRQ 0, 1, 2, 8 and 13 are always edge-triggered. */
const ELCR_MASK = [0xf8, 0xde] as const;

/** Power-on values of PIIX3 configuration registers QEMU initialises (PIIX3 datasheet defaults). */
const DEFAULTS: ReadonlyArray<readonly [number, number]> = [
  [0x4c, 0x4d],
  [0x4e, 0x03],
  [0x60, 0x80],
  [0x61, 0x80],
  [0x62, 0x80],
  [0x63, 0x80],
  [0x69, 0x02],
  [0x70, 0x80],
  [0x76, 0x0c],
  [0x77, 0x0c],
  [0x78, 0x02],
  [0xa0, 0x08],
  [0xa8, 0x0f],
];

/** PCI slot swizzling of QEMU's pc machine: INTx of slot s reaches PIRQ (pin - 1 + s - 1) mod 4. */
export function pcSlotToPirq(slot: number, pin: number): number {
  return (pin - 1 + slot - 1) & 3;
}

export interface Piix3Options {
  /** ISA IRQ lines 0-15 (what a PIRQ route register selects); the VM fans each out to the PIC and IOAPIC. */
  readonly isaIrqs: readonly (IrqLine | undefined)[];
  /** Told the level-triggered IRQ mask (bit n = IRQ n) whenever the guest writes the ELCR. */
  readonly onElcrChange?: (levelTriggered: number) => void;
}

export interface Piix3State {
  readonly version: 1;
  readonly registers: string;
  readonly elcr: number[];
}

/**
 * The PIIX3 PCI-to-ISA bridge at 00:01.0 (8086:7000, multifunction). It
 * routes PCI PIRQA-D to ISA IRQs through registers 0x60-0x63 and owns the
 * edge/level control registers (ELCR) at ports 0x4D0/0x4D1, served by
 * {@link Piix3.elcrPorts}. Plug it with `{ multifunction: true }` and make it
 * the bus's interrupt router.
 */
export class Piix3 implements PciDevice, PciInterruptRouter {
  readonly identity: PciIdentity = { vendorId: 0x8086, deviceId: 0x7000, classCode: 0x06_01_00, revision: 0x00 };
  readonly bars: readonly (PciBarDefinition | undefined)[] = [];
  readonly capabilities: readonly PciCapability[] = [];
  readonly interruptPin = 0;
  readonly inputs = 4;
  readonly elcrPorts: BusDevice;
  private readonly registers = new Uint8Array(0xc0);
  private readonly elcr = new Uint8Array(2);
  private readonly pirqLevels = [false, false, false, false];
  private readonly isaLevels = new Array<boolean>(16).fill(false);
  private readonly isaIrqs: readonly (IrqLine | undefined)[];
  private readonly onElcrChange: (levelTriggered: number) => void;

  constructor(options: Piix3Options) {
    this.isaIrqs = options.isaIrqs;
    this.onElcrChange = options.onElcrChange ?? (() => {});
    this.elcrPorts = {
      read: (offset: number, size: AccessSize) => {
        let value = 0;
        for (let i = 0; i < size; i++) value |= (offset + i < 2 ? this.elcr[offset + i]! : 0xff) << (8 * i);
        return value >>> 0;
      },
      write: (offset: number, size: AccessSize, value: number) => {
        for (let i = 0; i < size; i++) {
          const at = offset + i;
          if (at < 2) this.elcr[at] = (value >>> (8 * i)) & ELCR_MASK[at as 0 | 1];
        }
        this.onElcrChange(this.levelTriggered);
      },
    };
    this.resetRegisters();
  }

  /** Bit n set: ISA IRQ n is level-triggered. */
  get levelTriggered(): number {
    return this.elcr[0]! | (this.elcr[1]! << 8);
  }

  attach(_context: PciDeviceContext): void {}

  route(slot: number, pin: number): number {
    return pcSlotToPirq(slot, pin);
  }

  setInputLevel(input: number, asserted: boolean): void {
    if (input < 0 || input > 3) return;
    this.pirqLevels[input] = asserted;
    this.updateIsaLevels();
  }

  /** The ISA IRQ PIRQ `pirq` reaches, or undefined when its routing is disabled. */
  pirqTarget(pirq: number): number | undefined {
    const route = this.registers[PIIX3_PIRQ_ROUTE - 0x40 + pirq]!;
    // As QEMU: any value below 16 routes (the datasheet reserves IRQ 0-2, 8, 13).
    return (route & ROUTE_DISABLE) !== 0 ? undefined : route & 0x0f;
  }

  private updateIsaLevels(): void {
    for (let irq = 0; irq < 16; irq++) {
      let level = false;
      for (let pirq = 0; pirq < 4; pirq++) if (this.pirqLevels[pirq] === true && this.pirqTarget(pirq) === irq) level = true;
      if (level !== this.isaLevels[irq]) {
        this.isaLevels[irq] = level;
        this.isaIrqs[irq]?.setLevel(level);
      }
    }
  }

  private resetRegisters(): void {
    this.registers.fill(0);
    for (const [offset, value] of DEFAULTS) this.registers[offset - 0x40] = value;
    this.elcr.fill(0);
  }

  reset(): void {
    this.resetRegisters();
    this.updateIsaLevels();
    this.onElcrChange(this.levelTriggered);
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    let value = 0;
    for (let i = 0; i < size; i++) value |= (this.registers[offset + i - 0x40] ?? 0) << (8 * i);
    return value >>> 0;
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    let routesChanged = false;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (at < 0x40 || at > 0xff) continue;
      const byte = (value >>> (8 * i)) & 0xff;
      if (at >= PIIX3_PIRQ_ROUTE && at < PIIX3_PIRQ_ROUTE + 4) {
        this.registers[at - 0x40] = byte & ROUTE_WRITE_MASK;
        routesChanged = true;
      } else {
        this.registers[at - 0x40] = byte;
      }
    }
    if (routesChanged) this.updateIsaLevels();
  }

  /** PIRQ input levels are not saved: they follow from the PCI functions' INTx state, which the bus restores. */
  save(): Piix3State {
    return { version: 1, registers: encodeStateBytes(this.registers), elcr: [...this.elcr] };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'piix3', 1);
    const registers = reader.bytes('registers', 0xc0, 0xc0);
    for (let pirq = 0; pirq < 4; pirq++) {
      if ((registers[PIIX3_PIRQ_ROUTE - 0x40 + pirq]! & ~ROUTE_WRITE_MASK) !== 0) reader.fail('registers', `PIRQ${'ABCD'[pirq]} route has reserved bits set`);
    }
    const elcr = reader.uintArray('elcr', 2, 0xff, 2);
    if ((elcr[0]! & ~ELCR_MASK[0]) !== 0 || (elcr[1]! & ~ELCR_MASK[1]) !== 0) reader.fail('elcr', 'edge-only IRQs marked level-triggered');
    this.registers.set(registers);
    this.elcr.set(elcr);
    this.updateIsaLevels();
    this.onElcrChange(this.levelTriggered);
  }
}
