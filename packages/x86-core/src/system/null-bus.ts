import type { AccessSize, BusDevice, BusRegistration, MmioBus, PioBus } from '@tsvirt/interfaces';

/** The bus a CPU gets when none is given: nothing answers, reads are all-ones, writes vanish. */
export class NullBus implements PioBus, MmioBus {
  register(_base: number, _length: number, _device: BusDevice, name: string): BusRegistration {
    throw new Error(`cannot register ${name} on the CPU's placeholder bus; pass a bus in the CPU options`);
  }

  claims(): boolean {
    return false;
  }

  read(_address: number, size: AccessSize): number {
    return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
  }

  write(): void {}
}
