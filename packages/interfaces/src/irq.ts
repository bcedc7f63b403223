/**
 * One interrupt wire from a device to an interrupt controller. Devices hold
 * only this; which controller input it reaches is the machine's wiring.
 *
 * Level-triggered devices call `setLevel` whenever their interrupt condition
 * changes (calling it again with the same level is harmless); edge-triggered
 * ones call `pulse`, which is a rising and a falling edge.
 *
 * @example
 * ```ts
 * // given: irq (a RecordingIrqLine)
 * irq.setLevel(true);
 * irq.setLevel(true);   // the same level again: no new edge
 * irq.setLevel(false);
 * irq.pulse();          // edge-triggered: one rising edge, line ends low
 * assert.equal(irq.raised, 2);
 * assert.equal(irq.level, false);
 * ```
 */
export interface IrqLine {
  setLevel(asserted: boolean): void;
  pulse(): void;
}

/**
 * Where message-signalled interrupts go: a write of `data` to `address`
 * (0xFEExxxxx on x86) as a PCI device's MSI or MSI-X capability composes it.
 * The receiver decodes destination and vector from address and data; a
 * malformed message (an address outside 0xFEExxxxx) is dropped, as the
 * chipset drops it, never thrown.
 */
export interface MsiTarget {
  deliver(address: number, data: number): void;
}
