import { StateReader, ignoreEvents } from '@tsvirt/interfaces';
import type { GuestMemory, MmioBus, MsiTarget, Observer, PciDevice, PioBus } from '@tsvirt/interfaces';
import { PciFunction } from './pci-function.js';
import type { PciEvent, PciFunctionHost } from './pci-function.js';

/**
 * Decides which interrupt input a function's INTx pin reaches (on the pc
 * machine: the PIIX3's PIRQ A-D by slot swizzling) and receives the wired-OR
 * level of every pin routed there.
 */
export interface PciInterruptRouter {
  /** The router input for `pin` (1-4 = INTA#-INTD#) of the function at `slot`. */
  route(slot: number, pin: number): number;
  /** Number of router inputs. */
  readonly inputs: number;
  setInputLevel(input: number, asserted: boolean): void;
}

export interface PciBusOptions {
  readonly pio: PioBus;
  readonly mmio: MmioBus;
  readonly dma: GuestMemory;
  readonly msi: MsiTarget;
  readonly observer?: Observer<PciEvent>;
}

export interface PciPlugOptions {
  /** Sets the multifunction bit of function 0 even when it is alone (PIIX3 does). */
  readonly multifunction?: boolean;
}

export interface PciBusState {
  readonly version: 1;
  readonly functions: Array<{ slot: number; fn: number; state: unknown }>;
}

const SLOTS = 32;
const FUNCTIONS = 8;

/**
 * PCI bus 0: functions at device/function slots, configuration accesses
 * routed to them (absent functions read all-ones), INTx levels wired-ORed
 * per router input, hot-add/remove notifications.
 */
export class PciBus {
  private readonly functions: (PciFunction | undefined)[] = new Array<PciFunction | undefined>(SLOTS * FUNCTIONS).fill(undefined);
  private readonly declaredMultifunction = new Array<boolean>(SLOTS).fill(false);
  private readonly host: PciFunctionHost;
  private router: PciInterruptRouter | undefined;
  /** How many asserted pins reach each router input. */
  private inputCounts: number[] = [];
  private readonly hotplugListeners = new Set<(event: { kind: 'hot-added' | 'hot-removed'; slot: number; fn: number }) => void>();
  private readonly observer: Observer<PciEvent>;

  constructor(options: PciBusOptions) {
    this.observer = options.observer ?? ignoreEvents;
    this.host = {
      pio: options.pio,
      mmio: options.mmio,
      msi: options.msi,
      dma: options.dma,
      observer: this.observer,
      intxChanged: (slot, _fn, pin, asserted) => this.intxChanged(slot, pin, asserted),
    };
  }

  /** Connects the INTx router (the PIIX3 on a pc machine). */
  setInterruptRouter(router: PciInterruptRouter): void {
    this.router = router;
    this.inputCounts = new Array<number>(router.inputs).fill(0);
    for (const fn of this.functions) {
      if (fn?.intxLevel === true) this.intxChanged(fn.slot, fn.device.interruptPin, true);
    }
  }

  private intxChanged(slot: number, pin: number, asserted: boolean): void {
    const router = this.router;
    if (router === undefined || pin < 1 || pin > 4) return;
    const input = router.route(slot, pin);
    const count = this.inputCounts[input];
    if (count === undefined) return;
    const next = Math.max(0, count + (asserted ? 1 : -1));
    this.inputCounts[input] = next;
    if ((count > 0) !== (next > 0)) router.setInputLevel(input, next > 0);
  }

  /** Plugs `device` at `slot`.`fn`; calls its `attach` and notifies hot-plug listeners. */
  plug(device: PciDevice, slot: number, fn = 0, options: PciPlugOptions = {}): PciFunction {
    if (!Number.isInteger(slot) || slot < 0 || slot >= SLOTS || !Number.isInteger(fn) || fn < 0 || fn >= FUNCTIONS) {
      throw new RangeError(`PCI slot ${slot}.${fn} does not exist`);
    }
    const index = slot * FUNCTIONS + fn;
    if (this.functions[index] !== undefined) throw new RangeError(`PCI slot ${slot}.${fn} is occupied`);
    const pciFunction = new PciFunction(device, slot, fn, this.host);
    this.functions[index] = pciFunction;
    if (fn === 0 && options.multifunction === true) this.declaredMultifunction[slot] = true;
    this.updateMultifunction(slot);
    device.attach(pciFunction.context);
    this.observer({ kind: 'hot-added', slot, fn });
    for (const listener of this.hotplugListeners) listener({ kind: 'hot-added', slot, fn });
    return pciFunction;
  }

  /** Removes the function at `slot`.`fn` (hot-unplug): BARs leave the buses, INTx is released. */
  unplug(slot: number, fn = 0): void {
    const index = slot * FUNCTIONS + fn;
    const pciFunction = this.functions[index];
    if (pciFunction === undefined) return;
    pciFunction.detach();
    this.functions[index] = undefined;
    if (fn === 0) this.declaredMultifunction[slot] = false;
    this.updateMultifunction(slot);
    this.observer({ kind: 'hot-removed', slot, fn });
    for (const listener of this.hotplugListeners) listener({ kind: 'hot-removed', slot, fn });
  }

  /** Hot-plug hook (an ACPI or SHPC controller will listen here); returns the remover. */
  onHotplug(listener: (event: { kind: 'hot-added' | 'hot-removed'; slot: number; fn: number }) => void): () => void {
    this.hotplugListeners.add(listener);
    return () => this.hotplugListeners.delete(listener);
  }

  private updateMultifunction(slot: number): void {
    const first = this.functions[slot * FUNCTIONS];
    if (first === undefined) return;
    let others = false;
    for (let fn = 1; fn < FUNCTIONS; fn++) if (this.functions[slot * FUNCTIONS + fn] !== undefined) others = true;
    first.setMultifunction(others || this.declaredMultifunction[slot] === true);
  }

  functionAt(slot: number, fn: number): PciFunction | undefined {
    if (slot < 0 || slot >= SLOTS || fn < 0 || fn >= FUNCTIONS) return undefined;
    return this.functions[slot * FUNCTIONS + fn];
  }

  /** A configuration read on bus 0; absent functions read all-ones. */
  readConfig(slot: number, fn: number, offset: number, size: 1 | 2 | 4): number {
    const target = this.functionAt(slot, fn);
    if (target === undefined) return size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
    return target.readConfig(offset, size);
  }

  writeConfig(slot: number, fn: number, offset: number, size: 1 | 2 | 4, value: number): void {
    this.functionAt(slot, fn)?.writeConfig(offset, size, value);
  }

  /** PCI reset (RST#): every function's core state and the device itself. */
  reset(): void {
    for (const fn of this.functions) {
      if (fn === undefined) continue;
      fn.reset();
      fn.device.reset();
    }
  }

  save(): PciBusState {
    const functions: PciBusState['functions'] = [];
    for (const fn of this.functions) if (fn !== undefined) functions.push({ slot: fn.slot, fn: fn.fn, state: fn.save() });
    return { version: 1, functions };
  }

  /** Restores the core state of each plugged function; the set of functions must match. */
  restore(state: unknown): void {
    const reader = StateReader.open(state, 'pciBus', 1);
    const entries = reader.children('functions', SLOTS * FUNCTIONS);
    const plugged = this.functions.filter((fn) => fn !== undefined).length;
    if (entries.length !== plugged) reader.fail('functions', `expected ${plugged} functions, got ${entries.length}`);
    const raw = (state as { functions: unknown[] }).functions;
    const parsed = entries.map((entry, index) => {
      const slot = entry.uint('slot', SLOTS - 1);
      const fn = entry.uint('fn', FUNCTIONS - 1);
      const target = this.functionAt(slot, fn);
      if (target === undefined) return reader.fail('functions', `no function plugged at ${slot}.${fn}`);
      const functionState = (raw[index] as { state?: unknown }).state;
      return { target, parsed: target.parseState(functionState, `pciBus.functions[${index}].state`) };
    });
    // Everything was validated above; only now does anything change.
    for (const { target, parsed: functionState } of parsed) target.applyState(functionState);
  }
}
