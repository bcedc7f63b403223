import type { IrqLine, MsiTarget } from '../irq.js';

/** An IRQ line that remembers its level and counts edges, for device tests. */
export class RecordingIrqLine implements IrqLine {
  level = false;
  /** Rising edges seen (pulses count as one). */
  raised = 0;
  pulses = 0;

  setLevel(asserted: boolean): void {
    if (asserted && !this.level) this.raised++;
    this.level = asserted;
  }

  pulse(): void {
    this.pulses++;
    this.raised++;
  }
}

/** Records every MSI write. */
export class RecordingMsiTarget implements MsiTarget {
  readonly messages: Array<{ address: number; data: number }> = [];

  deliver(address: number, data: number): void {
    this.messages.push({ address, data });
  }
}
