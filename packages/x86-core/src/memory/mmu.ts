import { FrameAccess, type GuestAddress, type GuestMemory, type MemoryFrame, type MmioBus } from '@tsvirt/interfaces';
import { Cr0, Cr4, Efer, Flag, Vector } from '../state/registers.js';
import type { CpuCore as Cpu } from '../cpu-core.js';

const TLB_SIZE = 512;
const TLB_MASK = TLB_SIZE - 1;
/** A tag no page base can equal. */
const NO_PAGE = -1;
const NO_BYTES = new Uint8Array(0);
const NO_HALVES = new Uint16Array(0);
const NO_WORDS = new Uint32Array(0);
const PAGE_FAULT_PRESENT = 1;
const PAGE_FAULT_WRITE = 2;
const PAGE_FAULT_USER = 4;
const PAGE_FAULT_RESERVED = 8;
const PAGE_FAULT_FETCH = 16;
const PAGE_FAULT_PROTECTION_KEY = 32;
/** IA32_PKRS: the supervisor pages' protection-key rights, laid out as PKRU. */
const PKRS_MSR = 0x6e1;

/** Access kinds for translation. */
export enum Access { Read = 0, Write = 1, Execute = 2 }

/**
 * One direct-mapped TLB: linear page base → frame. A slot has one tag per
 * privilege (supervisor, user), NO_PAGE where that privilege may not use the
 * translation, so a hit is a single compare against the tags of the current one.
 */
class Tlb {
  readonly supervisorTag = new Float64Array(TLB_SIZE).fill(NO_PAGE);
  readonly userTag = new Float64Array(TLB_SIZE).fill(NO_PAGE);
  /** The tags of the privilege memory accesses are checked at now (see `Mmu.setUserAccess`). */
  tag = this.supervisorTag;
  readonly physicalPage = new Float64Array(TLB_SIZE);
  // Arrays built element by element are packed: a hit's load needs no check for holes.
  readonly frame: Array<MemoryFrame | undefined> = Array.from({ length: TLB_SIZE }, () => undefined);
  // The frame's views and offset, one array each: a hit reads these instead of the frame object (one
  // per guest page, seldom in the host's cache); the views are shared by all frames of a slab.
  readonly hostOffset = new Int32Array(TLB_SIZE);
  readonly bytes: Uint8Array[] = Array.from({ length: TLB_SIZE }, () => NO_BYTES);
  readonly halves: Uint16Array[] = Array.from({ length: TLB_SIZE }, () => NO_HALVES);
  readonly words: Uint32Array[] = Array.from({ length: TLB_SIZE }, () => NO_WORDS);

  flush(): void {
    this.supervisorTag.fill(NO_PAGE);
    this.userTag.fill(NO_PAGE);
    this.frame.fill(undefined);
  }

  dropPhysical(first: number, count: number): void {
    for (let i = 0; i < TLB_SIZE; i++) {
      const page = this.physicalPage[i]!;
      if (this.supervisorTag[i] !== NO_PAGE && page >= first && page < first + count) {
        this.supervisorTag[i] = NO_PAGE;
        this.userTag[i] = NO_PAGE;
        this.frame[i] = undefined;
      }
    }
  }
}

/**
 * Linear memory: paging (none, 2-level with PSE, PAE, 4-level) with a
 * software TLB of host frames, accessed/dirty updates, and MMIO routing for
 * physical addresses that are not RAM.
 */
export class Mmu {
  private readonly readTlb = new Tlb();
  private readonly writeTlb = new Tlb();
  private readonly fetchTlb = new Tlb();
  /** Filled by `translate`: what the walk allows. */
  private walkUser = true;
  private walkWritable = true;
  private walkExecutable = true;
  /** The protection-key rights (bit 0 access-disable, bit 1 write-disable) that applied to the last walk's page. */
  private walkKeyRights = 0;
  /** Physical pages that hold decoded instructions (so writes there must drop them). */
  readonly codePages: Uint8Array;

  constructor(
    private readonly cpu: Cpu,
    private readonly memory: GuestMemory,
    private readonly mmio: MmioBus,
  ) {
    this.codePages = new Uint8Array(Math.ceil(memory.size / 4096));
  }

  flush(): void {
    this.readTlb.flush();
    this.writeTlb.flush();
    this.fetchTlb.flush();
  }

  /** The memory told us frames of these physical pages are stale. */
  dropPhysical(first: number, count: number): void {
    this.readTlb.dropPhysical(first, count);
    this.writeTlb.dropPhysical(first, count);
    this.fetchTlb.dropPhysical(first, count);
  }

  /** A page now holds decoded code: writes to it must go through the slow path that notices. */
  protectCode(physicalPage: number): void {
    if (physicalPage < this.codePages.length) this.codePages[physicalPage] = 1;
    this.writeTlb.dropPhysical(physicalPage, 1);
  }

  /** Selects the TLB tags of user (privilege 3) or supervisor accesses; the CPU calls it when its memory privilege changes. */
  setUserAccess(user: boolean): void {
    this.readTlb.tag = user ? this.readTlb.userTag : this.readTlb.supervisorTag;
    this.writeTlb.tag = user ? this.writeTlb.userTag : this.writeTlb.supervisorTag;
    this.fetchTlb.tag = user ? this.fetchTlb.userTag : this.fetchTlb.supervisorTag;
  }

  read8(linear: number): number {
    const offset = linear & 0xfff;
    const slot = (linear >>> 12) & TLB_MASK;
    const tlb = this.readTlb;
    if (tlb.tag[slot] === linear - offset) return tlb.bytes[slot]![tlb.hostOffset[slot]! + offset]!;
    return this.readSlow(linear, 1);
  }

  read16(linear: number): number {
    const offset = linear & 0xfff;
    const slot = (linear >>> 12) & TLB_MASK;
    const tlb = this.readTlb;
    if (offset <= 0xffe && tlb.tag[slot] === linear - offset) {
      const at = tlb.hostOffset[slot]! + offset;
      if ((at & 1) === 0) return tlb.halves[slot]![at >> 1]!;
      const bytes = tlb.bytes[slot]!;
      return bytes[at]! | (bytes[at + 1]! << 8);
    }
    return this.readSlow(linear, 2);
  }

  read32(linear: number): number {
    const offset = linear & 0xfff;
    const slot = (linear >>> 12) & TLB_MASK;
    const tlb = this.readTlb;
    if (offset <= 0xffc && tlb.tag[slot] === linear - offset) {
      const at = tlb.hostOffset[slot]! + offset;
      if ((at & 3) === 0) return tlb.words[slot]![at >> 2]! | 0;
      const bytes = tlb.bytes[slot]!;
      return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
    }
    return this.readSlow(linear, 4);
  }

  /** 64-bit load: low half returned, high half in `cpu.valueHigh`. */
  read64(linear: number): number {
    const offset = linear & 0xfff;
    const slot = (linear >>> 12) & TLB_MASK;
    const tlb = this.readTlb;
    if (offset <= 0xff8 && tlb.tag[slot] === linear - offset) {
      const at = tlb.hostOffset[slot]! + offset;
      if ((at & 3) === 0) {
        const words = tlb.words[slot]!;
        this.cpu.valueHigh = words[(at >> 2) + 1]! | 0;
        return words[at >> 2]! | 0;
      }
    }
    const low = this.read32(linear);
    this.cpu.valueHigh = this.read32(linear + 4);
    return low;
  }

  /** 64-bit store; both halves are checked before either is written. */
  write64(linear: number, low: number, high: number): void {
    const offset = linear & 0xfff;
    const slot = (linear >>> 12) & TLB_MASK;
    const tlb = this.writeTlb;
    if (offset <= 0xff8 && tlb.tag[slot] === linear - offset) {
      const at = tlb.hostOffset[slot]! + offset;
      if ((at & 3) === 0) {
        const words = tlb.words[slot]!;
        words[at >> 2] = low;
        words[(at >> 2) + 1] = high;
        return;
      }
    }
    this.probeWrite(linear, 8);
    this.write32(linear, low);
    this.write32(linear + 4, high);
  }

  write8(linear: number, value: number): void {
    const offset = linear & 0xfff;
    const slot = (linear >>> 12) & TLB_MASK;
    const tlb = this.writeTlb;
    if (tlb.tag[slot] === linear - offset) {
      tlb.bytes[slot]![tlb.hostOffset[slot]! + offset] = value;
      return;
    }
    this.writeSlow(linear, 1, value);
  }

  write16(linear: number, value: number): void {
    const offset = linear & 0xfff;
    const slot = (linear >>> 12) & TLB_MASK;
    const tlb = this.writeTlb;
    if (offset <= 0xffe && tlb.tag[slot] === linear - offset) {
      const at = tlb.hostOffset[slot]! + offset;
      if ((at & 1) === 0) tlb.halves[slot]![at >> 1] = value;
      else {
        const bytes = tlb.bytes[slot]!;
        bytes[at] = value;
        bytes[at + 1] = value >> 8;
      }
      return;
    }
    this.writeSlow(linear, 2, value);
  }

  write32(linear: number, value: number): void {
    const offset = linear & 0xfff;
    const slot = (linear >>> 12) & TLB_MASK;
    const tlb = this.writeTlb;
    if (offset <= 0xffc && tlb.tag[slot] === linear - offset) {
      const at = tlb.hostOffset[slot]! + offset;
      if ((at & 3) === 0) tlb.words[slot]![at >> 2] = value;
      else {
        const bytes = tlb.bytes[slot]!;
        bytes[at] = value;
        bytes[at + 1] = value >> 8;
        bytes[at + 2] = value >> 16;
        bytes[at + 3] = value >> 24;
      }
      return;
    }
    this.writeSlow(linear, 4, value);
  }

  /** Checks that `[linear, linear + size)` may be written, faulting as a write would, without writing. */
  probeWrite(linear: number, size: number): void {
    this.writableFrame(linear);
    const last = linear + size - 1;
    if ((last & ~0xfff) !== (linear & ~0xfff) || Math.floor(last / 4096) !== Math.floor(linear / 4096)) this.writableFrame(last);
  }

  /** The frame for an instruction fetch at `linear` (page base in `fetchPhysical`), or undefined for MMIO. */
  fetchFrame(linear: number): MemoryFrame | undefined {
    const offset = linear & 0xfff;
    const slot = (linear >>> 12) & TLB_MASK;
    const tlb = this.fetchTlb;
    if (tlb.tag[slot] === linear - offset) {
      this.fetchPhysical = tlb.physicalPage[slot]!;
      return tlb.frame[slot];
    }
    const physical = this.translate(linear, Access.Execute);
    const page = Math.floor(physical / 4096);
    this.fetchPhysical = page;
    const frame = this.memory.frameOf(physical as GuestAddress, FrameAccess.Read);
    if (frame !== undefined) this.fill(tlb, linear - offset, page, frame);
    return frame;
  }
  /** Physical page of the last `fetchFrame`. */
  fetchPhysical = 0;

  /** Reads one code byte at `linear` (slow path: page-crossing or MMIO code). */
  fetchByte(linear: number): number {
    const physical = this.translate(linear, Access.Execute);
    return this.physicalRead(physical, 1);
  }

  private readSlow(linear: number, size: 1 | 2 | 4): number {
    const offset = linear & 0xfff;
    if (offset + size > 0x1000) {
      // Crosses a page: both pages must be readable before anything is returned.
      let value = 0;
      for (let i = 0; i < size; i++) value |= this.read8(linear + i) << (8 * i);
      return size === 4 ? value | 0 : value;
    }
    const physical = this.translate(linear, Access.Read);
    const frame = this.isRamPage(physical) ? this.memory.frameOf(physical as GuestAddress, FrameAccess.Read) : undefined;
    if (frame === undefined) return this.physicalRead(physical, size);
    this.fill(this.readTlb, linear - offset, Math.floor(physical / 4096), frame);
    const at = frame.byteOffset + offset;
    return size === 1 ? frame.u8[at]! : size === 2 ? frame.view.getUint16(at, true) : frame.view.getInt32(at, true);
  }

  private writeSlow(linear: number, size: 1 | 2 | 4, value: number): void {
    const offset = linear & 0xfff;
    if (offset + size > 0x1000) {
      // Crosses a page: check both before writing either, so a fault leaves memory unchanged.
      this.writableFrame(linear);
      this.writableFrame(linear + size - 1);
      for (let i = 0; i < size; i++) this.write8(linear + i, value >> (8 * i));
      return;
    }
    const frame = this.writableFrame(linear);
    if (frame === undefined) {
      this.physicalWrite(this.lastPhysical, size, value);
      return;
    }
    const at = frame.byteOffset + offset;
    if (size === 1) frame.u8[at] = value;
    else if (size === 2) frame.view.setUint16(at, value, true);
    else frame.view.setInt32(at, value, true);
  }

  private lastPhysical = 0;

  /** Translates for writing, fills the write TLB, and returns the frame (undefined for MMIO). */
  private writableFrame(linear: number): MemoryFrame | undefined {
    const offset = linear & 0xfff;
    const slot = (linear >>> 12) & TLB_MASK;
    const tlb = this.writeTlb;
    if (tlb.tag[slot] === linear - offset) return tlb.frame[slot];
    const physical = this.translate(linear, Access.Write);
    this.lastPhysical = physical;
    if (!this.isRamPage(physical)) return undefined;
    const page = Math.floor(physical / 4096);
    if (page < this.codePages.length && this.codePages[page] === 1) {
      // Self-modifying code: the decoded instructions of this page are stale from now on.
      this.codePages[page] = 0;
      this.cpu.invalidateCode(page, 1);
    }
    const frame = this.memory.frameOf(physical as GuestAddress, FrameAccess.Write);
    if (frame !== undefined) this.fill(tlb, linear - offset, page, frame);
    return frame;
  }

  private fill(tlb: Tlb, base: number, physicalPage: number, frame: MemoryFrame): void {
    const slot = (base >>> 12) & TLB_MASK;
    tlb.physicalPage[slot] = physicalPage;
    tlb.frame[slot] = frame;
    tlb.hostOffset[slot] = frame.byteOffset;
    tlb.bytes[slot] = frame.u8;
    tlb.halves[slot] = frame.u16;
    tlb.words[slot] = frame.u32;
    // Supervisor may use what the walk allowed (WP was checked by the walk for this access), except a user
    // page under SMAP (data) or SMEP (fetch): whether it may depends on EFLAGS.AC and CPL, so every such
    // access walks (see `check`).
    // A page whose protection key restricts it is not cached for data at all: its rights depend on the access.
    const guarded = (this.walkUser && (this.cpu.cr4 & (tlb === this.fetchTlb ? Cr4.SMEP : Cr4.SMAP)) !== 0) || (this.walkKeyRights !== 0 && tlb !== this.fetchTlb);
    tlb.supervisorTag[slot] = guarded ? NO_PAGE : base;
    tlb.userTag[slot] = this.walkUser && (tlb !== this.writeTlb || this.walkWritable) && (this.walkKeyRights === 0 || tlb === this.fetchTlb) ? base : NO_PAGE;
  }

  private isRamPage(physical: number): boolean {
    return physical < this.memory.size && this.memory.isRam(physical as GuestAddress);
  }

  physicalRead(physical: number, size: 1 | 2 | 4): number {
    if (physical + size <= this.memory.size && this.memory.isRam(physical as GuestAddress, size)) {
      const address = physical as GuestAddress;
      return size === 1 ? this.memory.readU8(address) : size === 2 ? this.memory.readU16(address) : this.memory.readU32(address) | 0;
    }
    if (physical > Number.MAX_SAFE_INTEGER - 8) return size === 4 ? -1 : (1 << (8 * size)) - 1;
    const value = this.mmio.read(physical as GuestAddress, size);
    this.cpu.noteDeviceAccess();
    return size === 4 ? value | 0 : value;
  }

  physicalWrite(physical: number, size: 1 | 2 | 4, value: number): void {
    if (physical + size <= this.memory.size && this.memory.isRam(physical as GuestAddress, size)) {
      const page = Math.floor(physical / 4096);
      if (page < this.codePages.length && this.codePages[page] === 1) {
        this.codePages[page] = 0;
        this.cpu.invalidateCode(page, 1);
      }
      const address = physical as GuestAddress;
      if (size === 1) this.memory.writeU8(address, value & 0xff);
      else if (size === 2) this.memory.writeU16(address, value & 0xffff);
      else this.memory.writeU32(address, value >>> 0);
      return;
    }
    if (physical > Number.MAX_SAFE_INTEGER - 8) return;
    this.mmio.write(physical as GuestAddress, size, size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1));
    this.cpu.noteDeviceAccess();
  }

  private read64Physical(physical: number): number {
    // Returns the low half; the high half goes to `entryHigh`.
    this.entryHigh = this.physicalRead(physical + 4, 4);
    return this.physicalRead(physical, 4);
  }
  private entryHigh = 0;

  /**
   * Linear → physical for the current paging mode, checking permissions for
   * `access` at the current privilege and updating accessed/dirty bits.
   * Raises #PF (CR2 and error code set) on failure.
   */
  translate(linear: number, access: Access): number {
    const cpu = this.cpu;
    this.walkUser = true;
    this.walkWritable = true;
    this.walkExecutable = true;
    this.walkKeyRights = 0;
    if ((cpu.cr0 & Cr0.PG) === 0) return linear >= 0 ? linear : linear + 2 ** 64;
    const user = cpu.memoryPrivilege === 3;
    const nxe = (cpu.efer & Efer.NXE) !== 0;
    let user_ = true;
    let writable = true;
    let executable = true;
    let physical: number;
    const fail = (present: boolean, reserved = false): never => this.pageFault(linear, access, present, reserved);
    if ((cpu.cr4 & Cr4.PAE) === 0) {
      const address = linear >>> 0;
      const directoryAt = (cpu.cr3 & 0xfffff000) >>> 0;
      const pdeAddress = directoryAt + (address >>> 22) * 4;
      const pde = this.physicalRead(pdeAddress, 4);
      if ((pde & 1) === 0) return fail(false);
      user_ = (pde & 4) !== 0;
      writable = (pde & 2) !== 0;
      if ((pde & 0x80) !== 0 && (cpu.cr4 & Cr4.PSE) !== 0) {
        this.check(linear, access, user, user_, writable, executable);
        this.setBits(pdeAddress, pde, access === Access.Write);
        physical = ((pde & 0xffc00000) >>> 0) + ((pde >>> 13) & 0xff) * 2 ** 32 + (address & 0x3fffff);
      } else {
        if ((pde & 0x20) === 0) this.physicalWrite(pdeAddress, 4, pde | 0x20);
        const pteAddress = ((pde & 0xfffff000) >>> 0) + ((address >>> 12) & 0x3ff) * 4;
        const pte = this.physicalRead(pteAddress, 4);
        if ((pte & 1) === 0) return fail(false);
        user_ = user_ && (pte & 4) !== 0;
        writable = writable && (pte & 2) !== 0;
        this.check(linear, access, user, user_, writable, executable);
        this.setBits(pteAddress, pte, access === Access.Write);
        physical = ((pte & 0xfffff000) >>> 0) + (address & 0xfff);
      }
    } else {
      const long = (cpu.efer & Efer.LMA) !== 0;
      const physicalBits = cpu.model.physicalAddressBits;
      // Address bits from MAXPHYADDR up are reserved: to bit 51 in 4-level paging (62:52 are ignored there), to bit 62 in PAE paging.
      const reservedHigh = lowBits(long ? 20 : 31) & ~lowBits(physicalBits - 32);
      const unsigned = linear >= 0 ? linear : linear + 2 ** 48;
      let tableAt: number;
      let level: number;
      if (long) {
        tableAt = pageBase(cpu.cr3, cpu.cr3High);
        level = 4;
      } else {
        const pdpteAddress = ((cpu.cr3 & 0xffffffe0) >>> 0) + ((unsigned >>> 30) & 3) * 8;
        const low = this.read64Physical(pdpteAddress);
        if ((low & 1) === 0) return fail(false);
        if ((low & 0x1e6) !== 0 || (this.entryHigh & ~lowBits(physicalBits - 32)) !== 0) return fail(true, true);
        tableAt = pageBase(low, this.entryHigh);
        level = 2;
      }
      for (;;) {
        const shift = 12 + 9 * (level - 1);
        const index = Math.floor(unsigned / 2 ** shift) % 512;
        const entryAddress = tableAt + index * 8;
        const low = this.read64Physical(entryAddress);
        const high = this.entryHigh;
        if ((low & 1) === 0) return fail(false);
        // Bit 63 is reserved unless EFER.NXE.
        if (high < 0 && !nxe) return fail(true, true);
        if ((high & reservedHigh) !== 0) return fail(true, true);
        user_ = user_ && (low & 4) !== 0;
        writable = writable && (low & 2) !== 0;
        if (nxe && high < 0) executable = false;
        // PS is reserved in a PML4E; a large page's address bits below its size are reserved (but bit 12, its PAT).
        if (level === 4 && (low & 0x80) !== 0) return fail(true, true);
        const large = (low & 0x80) !== 0 && (level === 2 || (level === 3 && long));
        if (large && (low & (level === 2 ? 0x1f_e000 : 0x3fff_e000)) !== 0) return fail(true, true);
        if (level === 1 || large) {
          // 4-level paging's protection keys (bits 62:59): PKRU governs user pages (CR4.PKE), PKRS supervisor ones (CR4.PKS).
          if (long && (cpu.cr4 & (Cr4.PKE | Cr4.PKS)) !== 0) this.walkKeyRights = this.keyRights(user_, (high >>> 27) & 0xf);
          this.check(linear, access, user, user_, writable, executable, this.walkKeyRights);
          this.setBits(entryAddress, low, access === Access.Write);
          const pageSize = 2 ** shift;
          physical = pageBase(low, high) - (large ? pageBase(low, high) % pageSize : 0) + (unsigned % pageSize);
          break;
        }
        if ((low & 0x20) === 0) this.physicalWrite(entryAddress, 4, low | 0x20);
        tableAt = pageBase(low, high);
        level--;
      }
    }
    this.walkUser = user_;
    this.walkWritable = writable;
    this.walkExecutable = executable;
    return physical;
  }

  private keyRights(userPage: boolean, key: number): number {
    const cpu = this.cpu;
    if (userPage) return (cpu.cr4 & Cr4.PKE) !== 0 ? (cpu.pkru >>> (2 * key)) & 3 : 0;
    return (cpu.cr4 & Cr4.PKS) !== 0 ? (cpu.msrs.lowOf(PKRS_MSR) >>> (2 * key)) & 3 : 0;
  }

  private check(linear: number, access: Access, user: boolean, userAllowed: boolean, writable: boolean, executable: boolean, keyRights = 0): void {
    const cpu = this.cpu;
    if (user && !userAllowed) this.pageFault(linear, access, true, false);
    if (!user && userAllowed) {
      // SMEP: ring 0-2 never fetches from a user page. SMAP: nor reads or writes one, unless EFLAGS.AC is set
      // at CPL < 3 (an implicit supervisor access at CPL 3, such as a descriptor-table read, always faults).
      if (access === Access.Execute ? (cpu.cr4 & Cr4.SMEP) !== 0 : (cpu.cr4 & Cr4.SMAP) !== 0 && (cpu.cpl === 3 || (cpu.flags.bits & Flag.AC) === 0)) {
        this.pageFault(linear, access, true, false);
      }
    }
    if (access === Access.Write && !writable && (user || (cpu.cr0 & Cr0.WP) !== 0)) this.pageFault(linear, access, true, false);
    if (access === Access.Execute && !executable) this.pageFault(linear, access, true, false);
    // Protection keys restrict data accesses only: access-disable any of them, write-disable writes by user
    // accesses and, with CR0.WP, supervisor ones.
    if (keyRights !== 0 && access !== Access.Execute) {
      if ((keyRights & 1) !== 0 || ((keyRights & 2) !== 0 && access === Access.Write && (user || (cpu.cr0 & Cr0.WP) !== 0))) this.pageFault(linear, access, true, false, true);
    }
  }

  private setBits(entryAddress: number, entry: number, dirty: boolean): void {
    const wanted = entry | 0x20 | (dirty ? 0x40 : 0);
    if (wanted !== entry) this.physicalWrite(entryAddress, 4, wanted);
  }

  private pageFault(linear: number, access: Access, present: boolean, reserved: boolean, protectionKey = false): never {
    const cpu = this.cpu;
    let code = (present ? PAGE_FAULT_PRESENT : 0) | (access === Access.Write ? PAGE_FAULT_WRITE : 0) | (cpu.memoryPrivilege === 3 ? PAGE_FAULT_USER : 0);
    if (reserved) code |= PAGE_FAULT_RESERVED;
    if (protectionKey) code |= PAGE_FAULT_PROTECTION_KEY;
    if (access === Access.Execute && ((cpu.efer & Efer.NXE) !== 0 || (cpu.cr4 & Cr4.SMEP) !== 0)) code |= PAGE_FAULT_FETCH;
    cpu.cr2 = linear;
    return cpu.fault(Vector.PF, code);
  }
}

/** A mask of the low `count` bits of a 32-bit word (0–32). */
function lowBits(count: number): number {
  return count >= 32 ? -1 : (1 << count) - 1;
}

/** Physical base address in a paging entry (bits 51:12) as a number. */
function pageBase(low: number, high: number): number {
  return (high & 0xfffff) * 2 ** 32 + ((low & 0xfffff000) >>> 0);
}
