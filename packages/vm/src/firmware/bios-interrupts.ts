import { guestAddress, type GuestMemory } from '@tsvirt/interfaces';

/** Writes to I/O ports, as the platform's port bus takes them. */
export interface PortWriter {
  write(port: number, size: 1 | 2 | 4, value: number): void;
}

/** Where the handlers live: F000:E000, in the BIOS area below the reset vector. */
const HANDLER_SEGMENT = 0xf000;
const HANDLER_OFFSET = 0xe000;
/** The master PIC's vectors (IRQ 0–7) and the slave's (IRQ 8–15), as every PC BIOS programs them. */
export const BIOS_MASTER_PIC_VECTOR = 0x08;
export const BIOS_SLAVE_PIC_VECTOR = 0x70;
/** IRQ 0 (timer), 1 (keyboard) and 2 (the cascade) unmasked, as SeaBIOS leaves the master; the slave all masked. */
export const BIOS_MASTER_PIC_MASK = 0xf8;
export const BIOS_SLAVE_PIC_MASK = 0xff;

// push ax; mov al, 0x20; out 0x20, al; pop ax; iret — a master IRQ acknowledged with a non-specific EOI.
const MASTER_IRQ_HANDLER = [0x50, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf];
// push ax; mov al, 0x20; out 0xa0, al; out 0x20, al; pop ax; iret — a slave IRQ: EOI to both chips.
const SLAVE_IRQ_HANDLER = [0x50, 0xb0, 0x20, 0xe6, 0xa0, 0xe6, 0x20, 0x58, 0xcf];
// iret — every other vector.
const RETURN = [0xcf];

/**
 * What a PC BIOS (SeaBIOS under QEMU) leaves behind for a kernel that goes
 * back to real mode and takes interrupts there, such as kvm-unit-tests'
 * realmode test: both PICs initialised (vectors 0x08 and 0x70, edge
 * triggered, the timer, keyboard and cascade unmasked) and a real-mode
 * interrupt vector table whose hardware-IRQ entries acknowledge the PIC and
 * return, and whose other entries just return. The PIT already runs at
 * 18.2 Hz from reset, as the BIOS leaves it.
 */
export function installBiosInterruptState(memory: GuestMemory, io: PortWriter): void {
  const handlers = new Uint8Array([...RETURN, ...MASTER_IRQ_HANDLER, ...SLAVE_IRQ_HANDLER]);
  const returnAt = HANDLER_OFFSET;
  const masterAt = returnAt + RETURN.length;
  const slaveAt = masterAt + MASTER_IRQ_HANDLER.length;
  memory.write(guestAddress(HANDLER_SEGMENT * 16 + HANDLER_OFFSET), handlers);
  const table = new Uint8Array(256 * 4);
  const view = new DataView(table.buffer);
  for (let vector = 0; vector < 256; vector++) {
    const master = vector >= BIOS_MASTER_PIC_VECTOR && vector < BIOS_MASTER_PIC_VECTOR + 8;
    const slave = vector >= BIOS_SLAVE_PIC_VECTOR && vector < BIOS_SLAVE_PIC_VECTOR + 8;
    view.setUint16(vector * 4, master ? masterAt : slave ? slaveAt : returnAt, true);
    view.setUint16(vector * 4 + 2, HANDLER_SEGMENT, true);
  }
  memory.write(guestAddress(0), table);
  // ICW1 (edge, cascade, ICW4 follows), ICW2 (vector base), ICW3 (slave on IRQ 2 / slave ID 2), ICW4 (8086 mode), then the mask.
  for (const [base, vector, cascade, mask] of [[0x20, BIOS_MASTER_PIC_VECTOR, 0x04, BIOS_MASTER_PIC_MASK], [0xa0, BIOS_SLAVE_PIC_VECTOR, 0x02, BIOS_SLAVE_PIC_MASK]] as const) {
    io.write(base, 1, 0x11);
    io.write(base + 1, 1, vector);
    io.write(base + 1, 1, cascade);
    io.write(base + 1, 1, 0x01);
    io.write(base + 1, 1, mask);
  }
}
