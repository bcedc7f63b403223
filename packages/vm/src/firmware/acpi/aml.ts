/**
 * A small encoder for the ACPI Machine Language (ACPI 6.x spec, chapter 20)
 * subset tsvirt's DSDT needs: scopes, devices, names, packages, buffers,
 * integers, strings, EISA IDs and simple methods. Each function returns the
 * encoded bytes of one term.
 */

export type AmlTerm = Uint8Array;

const NAME_OP = 0x08;
const SCOPE_OP = 0x10;
const BUFFER_OP = 0x11;
const PACKAGE_OP = 0x12;
const METHOD_OP = 0x14;
const RETURN_OP = 0xa4;
const EXT_OP_PREFIX = 0x5b;
const DEVICE_OP = 0x82;
const ZERO_OP = 0x00;
const ONE_OP = 0x01;
const ONES_OP = 0xff;
const BYTE_PREFIX = 0x0a;
const WORD_PREFIX = 0x0b;
const DWORD_PREFIX = 0x0c;
const STRING_PREFIX = 0x0d;
const QWORD_PREFIX = 0x0e;
const DUAL_NAME_PREFIX = 0x2e;
const MULTI_NAME_PREFIX = 0x2f;
const ROOT_CHAR = 0x5c;

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** PkgLength: the length of the package including the PkgLength bytes themselves. */
export function packageLength(contentLength: number): Uint8Array {
  if (contentLength + 1 < 0x40) return Uint8Array.of(contentLength + 1);
  for (let extra = 1; extra <= 3; extra++) {
    const total = contentLength + 1 + extra;
    if (total < 2 ** (4 + 8 * extra)) {
      const bytes = new Uint8Array(1 + extra);
      bytes[0] = (extra << 6) | (total & 0x0f);
      for (let i = 1; i <= extra; i++) bytes[i] = (total >>> (4 + 8 * (i - 1))) & 0xff;
      return bytes;
    }
  }
  throw new RangeError(`AML package of ${contentLength} bytes is too large`);
}

function nameSegment(segment: string): Uint8Array {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(segment)) throw new RangeError(`bad AML name segment "${segment}"`);
  return new TextEncoder().encode(segment.padEnd(4, '_'));
}

/** A NameString: `\_SB.PCI0`, `_HID`, `PCI0.LNKA` (dots separate segments; a leading backslash is the root). */
export function nameString(name: string): Uint8Array {
  const root = name.startsWith('\\');
  const segments = (root ? name.slice(1) : name).split('.').filter(Boolean);
  const prefix = root ? Uint8Array.of(ROOT_CHAR) : new Uint8Array(0);
  if (segments.length === 0) return concat(prefix, Uint8Array.of(0x00));
  if (segments.length === 1) return concat(prefix, nameSegment(segments[0]!));
  if (segments.length === 2) return concat(prefix, Uint8Array.of(DUAL_NAME_PREFIX), ...segments.map(nameSegment));
  return concat(prefix, Uint8Array.of(MULTI_NAME_PREFIX, segments.length), ...segments.map(nameSegment));
}

/** The smallest encoding of an unsigned integer. */
export function integer(value: number | bigint): AmlTerm {
  const big = BigInt(value);
  if (big < 0n || big >= 1n << 64n) throw new RangeError(`AML integer out of range: ${value}`);
  if (big === 0n) return Uint8Array.of(ZERO_OP);
  if (big === 1n) return Uint8Array.of(ONE_OP);
  if (big === (1n << 64n) - 1n) return Uint8Array.of(ONES_OP);
  const width = big < 0x100n ? 1 : big < 0x1_0000n ? 2 : big < 0x1_0000_0000n ? 4 : 8;
  const prefix = { 1: BYTE_PREFIX, 2: WORD_PREFIX, 4: DWORD_PREFIX, 8: QWORD_PREFIX }[width]!;
  const bytes = new Uint8Array(1 + width);
  bytes[0] = prefix;
  for (let i = 0; i < width; i++) bytes[1 + i] = Number((big >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

/** A DWord constant even when a shorter encoding exists (for _PRT addresses, as ASL compilers emit them). */
export function dword(value: number): AmlTerm {
  const bytes = new Uint8Array(5);
  bytes[0] = DWORD_PREFIX;
  new DataView(bytes.buffer).setUint32(1, value >>> 0, true);
  return bytes;
}

export function string(text: string): AmlTerm {
  if ([...text].some((character) => character.charCodeAt(0) === 0 || character.charCodeAt(0) > 0x7f)) throw new RangeError('AML strings are 7-bit ASCII without NUL');
  return concat(Uint8Array.of(STRING_PREFIX), new TextEncoder().encode(text), Uint8Array.of(0));
}

/** EisaId("PNP0A03"): three letters packed in 5 bits each, then four hex digits, as a DWord. */
export function eisaId(id: string): AmlTerm {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`bad EISA ID "${id}"`);
  const letters = [...id.slice(0, 3)].map((c) => c.charCodeAt(0) - 0x40);
  const packed = (letters[0]! << 10) | (letters[1]! << 5) | letters[2]!;
  const product = Number.parseInt(id.slice(3), 16);
  const bytes = Uint8Array.of(packed >> 8, packed & 0xff, product >> 8, product & 0xff);
  return dword(new DataView(bytes.buffer).getUint32(0, true));
}

export function name(path: string, value: AmlTerm): AmlTerm {
  return concat(Uint8Array.of(NAME_OP), nameString(path), value);
}

export function scope(path: string, ...terms: AmlTerm[]): AmlTerm {
  const body = concat(nameString(path), ...terms);
  return concat(Uint8Array.of(SCOPE_OP), packageLength(body.length), body);
}

export function device(path: string, ...terms: AmlTerm[]): AmlTerm {
  const body = concat(nameString(path), ...terms);
  return concat(Uint8Array.of(EXT_OP_PREFIX, DEVICE_OP), packageLength(body.length), body);
}

export function aPackage(...elements: AmlTerm[]): AmlTerm {
  if (elements.length > 255) throw new RangeError('a Package holds at most 255 elements (VarPackage is not supported)');
  const body = concat(Uint8Array.of(elements.length), ...elements);
  return concat(Uint8Array.of(PACKAGE_OP), packageLength(body.length), body);
}

export function buffer(bytes: Uint8Array): AmlTerm {
  const body = concat(integer(bytes.length), bytes);
  return concat(Uint8Array.of(BUFFER_OP), packageLength(body.length), body);
}

/** A method with no arguments that returns `value`. */
export function methodReturning(path: string, value: AmlTerm, serialized = false): AmlTerm {
  const body = concat(nameString(path), Uint8Array.of(serialized ? 0x08 : 0x00), Uint8Array.of(RETURN_OP), value);
  return concat(Uint8Array.of(METHOD_OP), packageLength(body.length), body);
}

/** Resource template helpers (ACPI 6.4.2/6.4.3): each returns the descriptor bytes; `resourceTemplate` adds the end tag. */
export const Resource = {
  /** Word address space descriptor for a bus number range. */
  busNumbers(minimum: number, maximum: number): Uint8Array {
    return wordAddress(2, 0x0c, 0, minimum, maximum);
  },
  /** Word address space descriptor for an I/O window. */
  ioWindow(minimum: number, maximum: number): Uint8Array {
    return wordAddress(1, 0x0c, 0x03, minimum, maximum);
  },
  /** DWord memory window (cacheable, read-write). */
  memoryWindow(minimum: number, maximum: number): Uint8Array {
    const bytes = new Uint8Array(26);
    const view = new DataView(bytes.buffer);
    bytes[0] = 0x87;
    view.setUint16(1, 23, true);
    bytes[3] = 0; // memory range
    bytes[4] = 0x0c; // MinFixed | MaxFixed, positive decode, producer
    bytes[5] = 0x03; // read-write, cacheable
    view.setUint32(10, minimum >>> 0, true);
    view.setUint32(14, maximum >>> 0, true);
    view.setUint32(22, (maximum - minimum + 1) >>> 0, true);
    return bytes;
  },
  /** ASL `IO (Decode16, base, base, alignment, length)`: a fixed I/O port range (small descriptor 0x47). */
  io(base: number, length: number, alignment = 1): Uint8Array {
    if (!isUint(base, 0xffff) || !isUint(length, 0xff) || !isUint(alignment, 0xff)) throw new RangeError(`bad IO descriptor: base ${base}, length ${length}, alignment ${alignment}`);
    return Uint8Array.of(0x47, 0x01, base & 0xff, base >> 8, base & 0xff, base >> 8, alignment, length);
  },
  /** ASL `IRQNoFlags () {irqs}`: ISA IRQs, edge-triggered, active high, exclusive (the 2-byte form of descriptor 0x22). */
  irqNoFlags(...irqs: number[]): Uint8Array {
    if (irqs.length === 0 || irqs.some((irq) => !isUint(irq, 15))) throw new RangeError(`bad IRQ list: ${irqs.join(', ')}`);
    const mask = irqs.reduce((bits, irq) => bits | (1 << irq), 0);
    return Uint8Array.of(0x22, mask & 0xff, mask >> 8);
  },
  /**
   * ASL `Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) {gsi}`
   * (extended interrupt, large descriptor 0x89): a GSI beyond the ISA IRQs,
   * level-triggered and active high, as a virtio-mmio device's line is.
   */
  levelInterrupt(gsi: number): Uint8Array {
    if (!isUint(gsi, 0xffff_ffff)) throw new RangeError(`bad interrupt number: ${gsi}`);
    const bytes = new Uint8Array(9);
    const view = new DataView(bytes.buffer);
    bytes[0] = 0x89;
    view.setUint16(1, 6, true);
    bytes[3] = 0x01; // consumer; level, active high, exclusive, not wake-capable
    bytes[4] = 1;
    view.setUint32(5, gsi, true);
    return bytes;
  },
  /** ASL `Memory32Fixed (ReadOnly | ReadWrite, base, length)` (large descriptor 0x86). */
  memory32Fixed(base: number, length: number, writable: boolean): Uint8Array {
    if (!isUint(base, 0xffff_ffff) || !isUint(length, 0xffff_ffff)) throw new RangeError(`bad Memory32Fixed descriptor: base ${base}, length ${length}`);
    const bytes = new Uint8Array(12);
    const view = new DataView(bytes.buffer);
    bytes[0] = 0x86;
    view.setUint16(1, 9, true);
    bytes[3] = writable ? 1 : 0;
    view.setUint32(4, base, true);
    view.setUint32(8, length, true);
    return bytes;
  },
};

function isUint(value: number, maximum: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= maximum;
}

function wordAddress(type: number, generalFlags: number, typeFlags: number, minimum: number, maximum: number): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  bytes[0] = 0x88;
  view.setUint16(1, 13, true);
  bytes[3] = type;
  bytes[4] = generalFlags;
  bytes[5] = typeFlags;
  view.setUint16(8, minimum, true);
  view.setUint16(10, maximum, true);
  view.setUint16(14, maximum - minimum + 1, true);
  return bytes;
}

/** A ResourceTemplate: the descriptors, then an end tag with a zero checksum byte. */
export function resourceTemplate(...descriptors: Uint8Array[]): AmlTerm {
  return buffer(concat(...descriptors, Uint8Array.of(0x79, 0x00)));
}
