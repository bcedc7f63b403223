/**
 * One interrupt wire from a device to an interrupt controller. Devices hold
 * only this; which controller input it reaches is the machine's wiring.
 *
 * Level-triggered devices call `setLevel` whenever their interrupt condition
 * changes (calling it again with the same level is harmless); edge-triggered
 * ones call `pulse`, which is a rising and a falling edge.
 */
export interface IrqLine {
  setLevel(asserted: boolean): void;
  pulse(): void;
}

/**
 * Where message-signalled interrupts go: a write of `data` to `address`
 * (0xFEExxxxx on x86) as a PCI device's MSI or MSI-X capability composes it.
 */
export interface MsiTarget {
  deliver(address: number, data: number): void;
}
