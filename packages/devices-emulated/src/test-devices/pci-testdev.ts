import type { AccessSize, BusDevice, PciBarDefinition, PciCapability, PciDevice, PciIdentity } from '@tsvirt/interfaces';

/** QEMU's pci-testdev: Red Hat's vendor ID and the test device's ID, class "other". */
export const PCI_TESTDEV_IDENTITY: PciIdentity = { vendorId: 0x1b36, deviceId: 0x0005, classCode: 0xff0000, revision: 0 };

/** The tests, in QEMU's order: three per region, memory (BAR 0) first, then port I/O (BAR 1). */
const TEST_NAMES = ['no-eventfd', 'wildcard-eventfd', 'datamatch-eventfd'] as const;
const MEMORY_TEST_SIZE = 2048;
const PORT_TEST_SIZE = 128;
const DATA_MATCH = 0xfa;
const NO_MATCH = 0xce;
/** struct PCITestDevHdr: test (u8), width (u8), pad, offset (u32), data (u8), pad, count (u32), name (NUL-terminated). */
const HEADER_SIZE = 16;
const COUNT_OFFSET = 12;

interface IoTest {
  readonly header: Uint8Array;
  readonly offset: number;
  readonly matchData: boolean;
  readonly data: number;
}

function buildTests(): IoTest[] {
  const tests: IoTest[] = [];
  for (const [region, size] of [['mmio', MEMORY_TEST_SIZE], ['portio', PORT_TEST_SIZE]] as const) {
    TEST_NAMES.forEach((test, index) => {
      const number = tests.length;
      const name = new TextEncoder().encode(`${region}-${test}`);
      const header = new Uint8Array(HEADER_SIZE + name.length + 1);
      const view = new DataView(header.buffer);
      // The register each test counts writes to: one byte per test, past the test's region size.
      const offset = size + number;
      const matchData = test !== 'wildcard-eventfd';
      const data = matchData ? DATA_MATCH : NO_MATCH;
      header[0] = index;
      header[1] = 1;
      view.setUint32(4, offset, true);
      header[8] = data;
      header.set(name, HEADER_SIZE);
      tests.push({ header, offset, matchData, data });
    });
  }
  return tests;
}

/**
 * QEMU's `pci-testdev` (hw/misc/pci-testdev.c), which kvm-unit-tests uses to
 * time MMIO and port-I/O exits: BAR 0 (4 KiB of memory) and BAR 1 (256 ports)
 * each hold three tests. Writing a test number to offset 0 of a BAR selects
 * that BAR's test; reads return the selected test's header byte by byte
 * (test, width, offset, data, count, name); a write to the test's offset
 * counts when it matches (the right width and data for the data-matching
 * tests, anything for the wildcard one). QEMU's eventfds are host-side
 * plumbing with no guest-visible effect, so they are not modelled.
 */
export class PciTestdev implements PciDevice {
  readonly identity = PCI_TESTDEV_IDENTITY;
  readonly capabilities: readonly PciCapability[] = [];
  readonly interruptPin = 0 as const;
  readonly bars: readonly (PciBarDefinition | undefined)[];
  private readonly tests = buildTests();
  private current = -1;

  constructor() {
    this.bars = [
      { kind: 'memory32', size: MEMORY_TEST_SIZE * 2, device: this.region(0) },
      { kind: 'io', size: PORT_TEST_SIZE * 2, device: this.region(1) },
    ];
  }

  attach(): void {}

  reset(): void {
    this.current = -1;
  }

  /** QEMU serves both regions a byte at a time: a wider access is that many byte accesses, lowest address first. */
  private region(type: 0 | 1): BusDevice {
    return {
      read: (offset: number, size: AccessSize) => {
        let value = 0;
        for (let i = 0; i < size; i++) value |= this.readByte(offset + i) << (8 * i);
        return value >>> 0;
      },
      write: (offset: number, size: AccessSize, value: number) => {
        for (let i = 0; i < size; i++) this.writeByte(type, offset + i, (value >>> (8 * i)) & 0xff);
      },
    };
  }

  private readByte(offset: number): number {
    const test = this.tests[this.current];
    // QEMU answers 0 from the last byte of the header on (its bound is `addr + size >= bufsize`).
    if (test === undefined || offset + 1 >= test.header.length) return 0;
    return test.header[offset]!;
  }

  private writeByte(type: 0 | 1, offset: number, value: number): void {
    if (offset === 0) {
      this.current = value < TEST_NAMES.length ? type * TEST_NAMES.length + value : -1;
      if (this.current >= 0) new DataView(this.tests[this.current]!.header.buffer).setUint32(COUNT_OFFSET, 0, true);
      return;
    }
    const test = this.tests[this.current];
    if (test === undefined || offset !== test.offset) return;
    if (test.matchData && value !== test.data) return;
    const view = new DataView(test.header.buffer);
    view.setUint32(COUNT_OFFSET, (view.getUint32(COUNT_OFFSET, true) + 1) >>> 0, true);
  }
}
