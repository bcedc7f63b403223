import { EntryFlag as F, UndefinedFlags as U, byPrefix, byRm, entry, group, mandatory, type Slot } from './opcode-entry.js';
import { CONDITION_NAMES } from './table-one-byte.js';
import { addSseFloat, addSseFloat38, addSseFloat3A } from './table-sse.js';
import { addSimdInteger, addSimdInteger38, addSimdInteger3A } from './table-simd-integer.js';
import { addAdx } from './table-vex.js';

const P = F.Privileged;

/** The 0F opcode map (Intel SDM vol. 2, table A-3), general-purpose and system instructions. */
export function twoByteMap(): Array<Slot | undefined> {
  const map: Array<Slot | undefined> = new Array<Slot | undefined>(256).fill(undefined);
  map[0x00] = group([
    entry('sldt', 'Ew', 'sldt'),
    entry('str', 'Ew', 'str'),
    entry('lldt', 'Ew', 'lldt', { flags: P }),
    entry('ltr', 'Ew', 'ltr', { flags: P }),
    entry('verr', 'Ew', 'verr'),
    entry('verw', 'Ew', 'verw'),
  ]);
  map[0x01] = group(
    [
      entry('sgdt', 'M', 'descriptorTable', { sub: 0, flags: F.MemoryOnly }),
      entry('sidt', 'M', 'descriptorTable', { sub: 1, flags: F.MemoryOnly }),
      entry('lgdt', 'M', 'descriptorTable', { sub: 2, flags: F.MemoryOnly | P }),
      entry('lidt', 'M', 'descriptorTable', { sub: 3, flags: F.MemoryOnly | P }),
      entry('smsw', 'Ew', 'smsw'),
      undefined,
      entry('lmsw', 'Ew', 'lmsw', { flags: P }),
      entry('invlpg', 'Mb', 'invlpg', { flags: F.MemoryOnly | P }),
    ],
    [
      undefined,
      // 0F 01 CA/CB: CLAC, STAC (#UD outside ring 0 is the handler's).
      byRm([undefined, undefined, entry('clac', '', 'accessFlag', { sub: 0, feature: 'smap' }), entry('stac', '', 'accessFlag', { sub: 1, feature: 'smap' })]),
      // 0F 01 D0/D1; XSETBV's CPL check is the handler's (real mode counts as CPL 0).
      byRm([entry('xgetbv', '', 'xgetbv', { feature: 'xsave' }), entry('xsetbv', '', 'xsetbv', { feature: 'xsave', flags: P })]),
      undefined,
      entry('smsw', 'Ev', 'smsw'),
      // 0F 01 EE/EF: RDPKRU, WRPKRU.
      byRm([undefined, undefined, undefined, undefined, undefined, undefined, entry('rdpkru', '', 'protectionKeyRights', { sub: 0, feature: 'pku' }), entry('wrpkru', '', 'protectionKeyRights', { sub: 1, feature: 'pku' })]),
      entry('lmsw', 'Ew', 'lmsw', { flags: P }),
      byRm([entry('swapgs', '', 'swapgs', { flags: F.Only64 | P }), entry('rdtscp', '', 'rdtscp', { feature: 'rdtscp' })]),
    ],
  );
  map[0x02] = entry('lar', 'Gv,Ew', 'lar');
  map[0x03] = entry('lsl', 'Gv,Ew', 'lsl');
  map[0x05] = entry('syscall', '', 'syscall', { feature: 'syscall' });
  map[0x06] = entry('clts', '', 'clts', { flags: P });
  map[0x07] = entry('sysret', '', 'sysret', { feature: 'syscall', flags: P });
  map[0x08] = entry('invd', '', 'privilegedNop', { flags: P });
  map[0x09] = entry('wbinvd', '', 'privilegedNop', { flags: P });
  map[0x0b] = entry('ud2', '', 'ud');
  map[0x0d] = entry('prefetch', 'Ev', 'nop', { flags: F.MemoryOnly });
  for (let hint = 0x18; hint <= 0x1f; hint++) map[hint] = entry('nop', 'Ev', 'nop');
  map[0x20] = entry('mov', 'Rd,Cd', 'movFromCr', { flags: F.ForceRegister | F.Size32or64 | P });
  map[0x21] = entry('mov', 'Rd,Dd', 'movFromDr', { flags: F.ForceRegister | F.Size32or64 | P });
  map[0x22] = entry('mov', 'Cd,Rd', 'movToCr', { flags: F.ForceRegister | F.Size32or64 | P });
  map[0x23] = entry('mov', 'Dd,Rd', 'movToDr', { flags: F.ForceRegister | F.Size32or64 | P });
  map[0x30] = entry('wrmsr', '', 'wrmsr', { feature: 'msr', flags: P });
  map[0x31] = entry('rdtsc', '', 'rdtsc', { feature: 'tsc' });
  map[0x32] = entry('rdmsr', '', 'rdmsr', { feature: 'msr', flags: P });
  map[0x33] = entry('rdpmc', '', 'rdpmc');
  map[0x34] = entry('sysenter', '', 'sysenter', { feature: 'sep' });
  map[0x35] = entry('sysexit', '', 'sysexit', { feature: 'sep', flags: P });
  for (let cc = 0; cc < 16; cc++) {
    const name = CONDITION_NAMES[cc]!;
    map[0x40 + cc] = entry(`cmov${name}`, 'Gv,Ev', 'cmov', { sub: cc, feature: 'cmov' });
    map[0x80 + cc] = entry(`j${name}`, 'Jz', 'jcc', { sub: cc, flags: F.Force64 });
    map[0x90 + cc] = entry(`set${name}`, 'Eb', 'setcc', { sub: cc });
  }
  map[0xa0] = entry('push', 'FS', 'pushSeg', { sub: 4, flags: F.Default64 });
  map[0xa1] = entry('pop', 'FS', 'popSeg', { sub: 4, flags: F.Default64 });
  map[0xa2] = entry('cpuid', '', 'cpuid');
  map[0xa3] = entry('bt', 'Ev,Gv', 'bitTest', { sub: 0, undefinedFlags: U.bitTest });
  map[0xa4] = entry('shld', 'Ev,Gv,Ib', 'shld', { undefinedFlags: U.doubleShift });
  map[0xa5] = entry('shld', 'Ev,Gv,CL', 'shld', { undefinedFlags: U.doubleShift });
  map[0xa8] = entry('push', 'GS', 'pushSeg', { sub: 5, flags: F.Default64 });
  map[0xa9] = entry('pop', 'GS', 'popSeg', { sub: 5, flags: F.Default64 });
  map[0xab] = entry('bts', 'Ev,Gv', 'bitTest', { sub: 1, flags: F.Lockable, undefinedFlags: U.bitTest });
  map[0xac] = entry('shrd', 'Ev,Gv,Ib', 'shrd', { undefinedFlags: U.doubleShift });
  map[0xad] = entry('shrd', 'Ev,Gv,CL', 'shrd', { undefinedFlags: U.doubleShift });
  // 0F AE: fences and CLFLUSH are no-ops for an in-order interpreter; FXSAVE/FXRSTOR need FXSR, LDMXCSR/STMXCSR SSE.
  map[0xae] = group(
    [
      entry('fxsave', 'M', 'fxsave', { sub: 0, feature: 'fxsr' }),
      entry('fxrstor', 'M', 'fxsave', { sub: 1, feature: 'fxsr' }),
      entry('ldmxcsr', 'Md', 'mxcsr', { sub: 0, feature: 'sse', flags: F.MemoryOnly }),
      entry('stmxcsr', 'Md', 'mxcsr', { sub: 1, feature: 'sse', flags: F.MemoryOnly }),
      // NP 0F AE /4–/6: a 66/F2/F3 prefix is #UD (those forms are other instructions on newer processors).
      mandatory({ none: entry('xsave', 'M', 'xsave', { sub: 0, feature: 'xsave', flags: F.MemoryOnly }) }),
      mandatory({ none: entry('xrstor', 'M', 'xsave', { sub: 1, feature: 'xsave', flags: F.MemoryOnly }) }),
      mandatory({ none: entry('xsaveopt', 'M', 'xsave', { sub: 2, feature: 'xsaveopt', flags: F.MemoryOnly }) }),
      entry('clflush', 'Mb', 'nop', { flags: F.MemoryOnly }),
    ],
    [undefined, undefined, undefined, undefined, undefined, entry('lfence', '', 'nop'), entry('mfence', '', 'nop'), entry('sfence', '', 'nop')],
  );
  map[0xaf] = entry('imul', 'Gv,Ev', 'imul', { undefinedFlags: U.multiply });
  map[0xb0] = entry('cmpxchg', 'Eb,Gb', 'cmpxchg', { flags: F.Lockable });
  map[0xb1] = entry('cmpxchg', 'Ev,Gv', 'cmpxchg', { flags: F.Lockable });
  map[0xb2] = entry('lss', 'Gv,Mp', 'loadFarPointer', { sub: 2, flags: F.MemoryOnly });
  map[0xb3] = entry('btr', 'Ev,Gv', 'bitTest', { sub: 2, flags: F.Lockable, undefinedFlags: U.bitTest });
  map[0xb4] = entry('lfs', 'Gv,Mp', 'loadFarPointer', { sub: 4, flags: F.MemoryOnly });
  map[0xb5] = entry('lgs', 'Gv,Mp', 'loadFarPointer', { sub: 5, flags: F.MemoryOnly });
  map[0xb6] = entry('movzx', 'Gv,Eb', 'movzx', { sub: 1 });
  map[0xb7] = entry('movzx', 'Gv,Ew', 'movzx', { sub: 2 });
  map[0xb8] = byPrefix({ repeat: entry('popcnt', 'Gv,Ev', 'popcnt', { feature: 'popcnt' }) });
  map[0xb9] = entry('ud1', 'Gv,Ev', 'ud');
  map[0xba] = group([
    undefined,
    undefined,
    undefined,
    undefined,
    entry('bt', 'Ev,Ib', 'bitTest', { sub: 0, undefinedFlags: U.bitTest }),
    entry('bts', 'Ev,Ib', 'bitTest', { sub: 1, flags: F.Lockable, undefinedFlags: U.bitTest }),
    entry('btr', 'Ev,Ib', 'bitTest', { sub: 2, flags: F.Lockable, undefinedFlags: U.bitTest }),
    entry('btc', 'Ev,Ib', 'bitTest', { sub: 3, flags: F.Lockable, undefinedFlags: U.bitTest }),
  ]);
  map[0xbb] = entry('btc', 'Ev,Gv', 'bitTest', { sub: 3, flags: F.Lockable, undefinedFlags: U.bitTest });
  const bsf = entry('bsf', 'Gv,Ev', 'bsf', { undefinedFlags: U.bitScan });
  const bsr = entry('bsr', 'Gv,Ev', 'bsr', { undefinedFlags: U.bitScan });
  // Without the feature, F3 0F BC/BD run as BSF/BSR (the prefix is ignored), as on older CPUs.
  map[0xbc] = byPrefix({ none: bsf, operandSize: bsf, repeatNot: bsf, repeat: entry('tzcnt', 'Gv,Ev', 'tzcnt', { feature: 'bmi1', undefinedFlags: U.countZeros }) });
  map[0xbd] = byPrefix({ none: bsr, operandSize: bsr, repeatNot: bsr, repeat: entry('lzcnt', 'Gv,Ev', 'lzcnt', { feature: 'lzcnt', undefinedFlags: U.countZeros }) });
  map[0xbe] = entry('movsx', 'Gv,Eb', 'movsx', { sub: 1 });
  map[0xbf] = entry('movsx', 'Gv,Ew', 'movsx', { sub: 2 });
  map[0xc0] = entry('xadd', 'Eb,Gb', 'xadd', { flags: F.Lockable });
  map[0xc1] = entry('xadd', 'Ev,Gv', 'xadd', { flags: F.Lockable });
  map[0xc7] = group([undefined, entry('cmpxchg8b', 'Mq', 'cmpxchgPair', { flags: F.MemoryOnly | F.Lockable, feature: 'cx8' })]);
  for (let r = 0; r < 8; r++) map[0xc8 + r] = entry('bswap', 'Zv', 'bswap');
  map[0xff] = entry('ud0', 'Gv,Ev', 'ud');
  addSseFloat(map);
  addSimdInteger(map);
  return map;
}

/** The 0F 38 map: MOVBE and ADCX/ADOX among the general-purpose instructions (the rest are SSE). */
export function threeByte38Map(): Array<Slot | undefined> {
  const map: Array<Slot | undefined> = new Array<Slot | undefined>(256).fill(undefined);
  map[0xf0] = byPrefix({ none: entry('movbe', 'Gv,Mv', 'movbe', { sub: 0, feature: 'movbe', flags: F.MemoryOnly }), operandSize: entry('movbe', 'Gv,Mv', 'movbe', { sub: 0, feature: 'movbe', flags: F.MemoryOnly }) });
  map[0xf1] = byPrefix({ none: entry('movbe', 'Mv,Gv', 'movbe', { sub: 1, feature: 'movbe', flags: F.MemoryOnly }), operandSize: entry('movbe', 'Mv,Gv', 'movbe', { sub: 1, feature: 'movbe', flags: F.MemoryOnly }) });
  addSseFloat38(map);
  addSimdInteger38(map);
  addAdx(map);
  return map;
}

/** The 0F 3A map: SSE4/AES/VEX only, nothing general-purpose. */
export function threeByte3AMap(): Array<Slot | undefined> {
  const map: Array<Slot | undefined> = new Array<Slot | undefined>(256).fill(undefined);
  addSseFloat3A(map);
  addSimdInteger3A(map);
  return map;
}
