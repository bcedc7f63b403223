import { guestAddress as a } from '@tsvirt/interfaces';
import { GuestRam } from '@tsvirt/memory';
import { describe, expect, it } from 'vitest';
import { pcRamRegions } from '../machine-layout.js';
import { BIOS_MASTER_PIC_MASK, BIOS_MASTER_PIC_VECTOR, BIOS_SLAVE_PIC_MASK, BIOS_SLAVE_PIC_VECTOR, installBiosInterruptState } from './bios-interrupts.js';

describe('installBiosInterruptState', () => {
  it('programs both PICs as a BIOS does and fills the real-mode vector table', () => {
    const memory = new GuestRam({ regions: pcRamRegions(16 << 20) });
    const writes: string[] = [];
    installBiosInterruptState(memory, { write: (port, _size, value) => void writes.push(`${port.toString(16)}=${value.toString(16)}`) });
    const icw = (base: number, vector: number, cascade: number, mask: number) => [0x11, vector, cascade, 1, mask].map((value, index) => `${(base + (index === 0 ? 0 : 1)).toString(16)}=${value.toString(16)}`);
    expect(writes).toEqual([...icw(0x20, BIOS_MASTER_PIC_VECTOR, 4, BIOS_MASTER_PIC_MASK), ...icw(0xa0, BIOS_SLAVE_PIC_VECTOR, 2, BIOS_SLAVE_PIC_MASK)]);
    for (let vector = 0; vector < 256; vector++) expect(memory.readU16(a(vector * 4 + 2)), `vector ${vector}`).toBe(0xf000);
    // Other vectors IRET; IRQ 0-7 end with an EOI to the master, IRQ 8-15 to both.
    expect(memory.readU8(a(0xf_0000 + memory.readU16(a(0x30 * 4))))).toBe(0xcf);
    const bytes = (vector: number, length: number) => {
      const out = new Uint8Array(length);
      memory.read(a(0xf_0000 + memory.readU16(a(vector * 4))), out);
      return [...out];
    };
    expect(bytes(0x0f, 7)).toEqual([0x50, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf]);
    expect(bytes(0x70, 9)).toEqual([0x50, 0xb0, 0x20, 0xe6, 0xa0, 0xe6, 0x20, 0x58, 0xcf]);
  });
});
