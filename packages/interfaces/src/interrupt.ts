/**
 * What a vCPU asks of its interrupt controller (its local APIC, or the 8259
 * PIC pair on machines without one). The CPU calls `pending` at instruction
 * boundaries when RFLAGS.IF allows, and `acknowledge` when it takes the
 * interrupt, exactly as the INTA cycle works on hardware.
 *
 * Edge case: a request can vanish between `pending` and `acknowledge` (a
 * level-triggered line dropped); `acknowledge` then returns the spurious
 * vector (IRQ 7 or 15 on a PIC, the SVR vector on an APIC), never throws.
 *
 * @example
 * ```ts
 * // A one-line controller: vector 0x30 while the line is up, spurious 0x27 otherwise.
 * let line = true;
 * const controller: InterruptController = { pending: () => line, acknowledge: () => (line ? 0x30 : 0x27) };
 * assert.equal(controller.pending() && controller.acknowledge(), 0x30);
 * line = false;
 * assert.equal(controller.acknowledge(), 0x27);
 * ```
 */
export interface InterruptController {
  /** True when a maskable interrupt is ready to be delivered. */
  pending(): boolean;
  /**
   * Takes the highest-priority pending interrupt and returns its vector
   * (a spurious vector if the request went away meanwhile).
   */
  acknowledge(): number;
}

/**
 * The local APIC as the CPU sees it beyond INTA: the APIC_BASE MSR (0x1B), the
 * TSC-deadline MSR (0x6E0), the x2APIC MSRs (0x800–0x8FF) and CR8, which the
 * CPU forwards here.
 */
export interface LocalApicPort extends InterruptController {
  /** Reads MSR `index` into `result[0]` (low) and `result[1]` (high); false raises #GP in the guest. */
  readMsr(index: number, result: Uint32Array): boolean;
  /** Writes MSR `index`; false raises #GP in the guest. */
  writeMsr(index: number, low: number, high: number): boolean;
  /** CR8: the task-priority class (TPR bits 7:4). */
  readonly taskPriorityClass: number;
  setTaskPriorityClass(value: number): void;
}

/** Signals an interrupt controller sends to a vCPU besides maskable interrupts. */
export interface ProcessorSignals {
  /** Non-maskable interrupt. */
  nmi(): void;
  /** INIT: the vCPU resets and, unless it is the bootstrap processor, waits for a SIPI. */
  init(): void;
  /** Start-up IPI: a waiting application processor starts in real mode at `vector << 12`. */
  startup(vector: number): void;
  /** An interrupt became pending: a halted vCPU should wake and look. */
  wake(): void;
}
