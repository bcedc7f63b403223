import type { MsiTarget } from '@tsvirt/interfaces';
import { DeliveryMode } from './apic-registers.js';
import type { LocalApic } from './local-apic.js';

/** An interrupt message on the APIC bus (an IPI, an IOAPIC redirection, an MSI). */
export interface ApicMessage {
  readonly destination: number;
  readonly logical: boolean;
  readonly deliveryMode: number;
  readonly vector: number;
  readonly levelTriggered: boolean;
  /** ICR destination shorthand: 0 none, 1 self, 2 all including self, 3 all excluding self. */
  readonly shorthand: number;
  /** The broadcast destination for the sender's format: 0xFF for 8-bit IDs, 0xFFFFFFFF for x2APIC. */
  readonly broadcast: number;
}

/**
 * The system bus between local APICs, IOAPICs and PCI MSI: routes messages
 * to the local APICs their destination selects (physical, logical flat or
 * cluster, broadcast, lowest priority) and EOIs of level-triggered vectors
 * back to the IOAPICs. Works for any number of local APICs.
 */
export class ApicBus implements MsiTarget {
  private readonly apics: LocalApic[] = [];
  private readonly eoiListeners: Array<(vector: number) => void> = [];

  attach(apic: LocalApic): void {
    if (!this.apics.includes(apic)) this.apics.push(apic);
  }

  get localApics(): readonly LocalApic[] {
    return this.apics;
  }

  /** IOAPICs listen here for EOI broadcasts of level-triggered vectors; returns the remover. */
  onEoi(listener: (vector: number) => void): () => void {
    this.eoiListeners.push(listener);
    return () => {
      const index = this.eoiListeners.indexOf(listener);
      if (index >= 0) this.eoiListeners.splice(index, 1);
    };
  }

  broadcastEoi(vector: number): void {
    for (const listener of this.eoiListeners) listener(vector);
  }

  /**
   * An MSI write: address 0xFEExxxxx carries the destination ID (bits 19:12)
   * and destination mode (bit 2); data carries vector, delivery mode and
   * trigger mode (SDM 11.11). Writes elsewhere reach no APIC.
   */
  deliver(address: number, data: number): void {
    if (address >= 0x1_0000_0000 || address >>> 20 !== 0xfee) return;
    this.send({
      destination: (address >>> 12) & 0xff,
      logical: (address & 0x4) !== 0,
      deliveryMode: (data >>> 8) & 7,
      vector: data & 0xff,
      levelTriggered: (data & 0x8000) !== 0,
      shorthand: 0,
      broadcast: 0xff,
    });
  }

  /** An interrupt command from `source`'s ICR. */
  sendIpi(source: LocalApic, message: ApicMessage): void {
    switch (message.shorthand) {
      case 1:
        source.accept(message.deliveryMode, message.vector, message.levelTriggered);
        return;
      case 2:
      case 3:
        for (const apic of this.apics) {
          if (apic.hardwareEnabled && (message.shorthand === 2 || apic !== source)) apic.accept(message.deliveryMode, message.vector, message.levelTriggered);
        }
        return;
      default:
        this.send(message);
    }
  }

  /** Delivers a message to the APICs its destination selects. */
  send(message: ApicMessage): void {
    if (message.deliveryMode === DeliveryMode.LowestPriority) {
      let chosen: LocalApic | undefined;
      for (const apic of this.apics) {
        if (!apic.softwareEnabled || !apic.matchesDestination(message.destination, message.logical, message.broadcast)) continue;
        if (chosen === undefined || apic.arbitrationPriority < chosen.arbitrationPriority) chosen = apic;
      }
      chosen?.accept(message.deliveryMode, message.vector, message.levelTriggered);
      return;
    }
    for (const apic of this.apics) {
      if (apic.matchesDestination(message.destination, message.logical, message.broadcast)) apic.accept(message.deliveryMode, message.vector, message.levelTriggered);
    }
  }
}
