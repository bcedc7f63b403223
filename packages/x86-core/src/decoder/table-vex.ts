import { EntryFlag as F, UndefinedFlags as U, entry, group, mandatory, type Slot } from './opcode-entry.js';

/**
 * The VEX-encoded opcode maps (VEX.mmmmm 1, 2, 3: implied 0F, 0F 38, 0F 3A).
 * They are separate from the legacy maps, so an opcode here means nothing
 * without a VEX prefix and a legacy opcode means nothing with one. VEX.pp
 * acts as the mandatory prefix (none, 66, F3, F2). Operands in the SDM's
 * notation, with B for the general register VEX.vvvv names.
 *
 * So far the general-purpose BMI1 and BMI2 instructions (SDM vol. 2, table A-2's
 * VEX rows; all VEX.LZ, VEX.W1 selecting 64-bit operands in 64-bit mode).
 */
export function vexMaps(): Array<Array<Slot | undefined>> {
  const map0F = new Array<Slot | undefined>(256).fill(undefined);
  const map38 = new Array<Slot | undefined>(256).fill(undefined);
  const map3A = new Array<Slot | undefined>(256).fill(undefined);
  const LZ = F.VexLZ;
  map38[0xf2] = mandatory({ none: entry('andn', 'Gy,By,Ey', 'andn', { feature: 'bmi1', flags: LZ, undefinedFlags: U.bitManipulation }) });
  // Group 17: BLSR, BLSMSK, BLSI (`sub` = ModRM.reg), destination VEX.vvvv.
  map38[0xf3] = mandatory({
    none: group([
      undefined,
      entry('blsr', 'By,Ey', 'lowestSetBit', { sub: 1, feature: 'bmi1', flags: LZ, undefinedFlags: U.bitManipulation }),
      entry('blsmsk', 'By,Ey', 'lowestSetBit', { sub: 2, feature: 'bmi1', flags: LZ, undefinedFlags: U.bitManipulation }),
      entry('blsi', 'By,Ey', 'lowestSetBit', { sub: 3, feature: 'bmi1', flags: LZ, undefinedFlags: U.bitManipulation }),
    ]),
  });
  map38[0xf5] = mandatory({
    none: entry('bzhi', 'Gy,Ey,By', 'zeroHighBits', { feature: 'bmi2', flags: LZ, undefinedFlags: U.bitManipulation }),
    repeat: entry('pext', 'Gy,By,Ey', 'parallelBits', { sub: 1, feature: 'bmi2', flags: LZ }),
    repeatNot: entry('pdep', 'Gy,By,Ey', 'parallelBits', { sub: 0, feature: 'bmi2', flags: LZ }),
  });
  // MULX: high half to ModRM.reg, low half to VEX.vvvv; rDX is the implicit multiplicand.
  map38[0xf6] = mandatory({ repeatNot: entry('mulx', 'Gy,By,Ey', 'multiplyFlagless', { feature: 'bmi2', flags: LZ }) });
  map38[0xf7] = mandatory({
    none: entry('bextr', 'Gy,Ey,By', 'bitFieldExtract', { feature: 'bmi1', flags: LZ, undefinedFlags: U.bitFieldExtract }),
    operandSize: entry('shlx', 'Gy,Ey,By', 'shiftFlagless', { sub: 0, feature: 'bmi2', flags: LZ }),
    repeat: entry('sarx', 'Gy,Ey,By', 'shiftFlagless', { sub: 2, feature: 'bmi2', flags: LZ }),
    repeatNot: entry('shrx', 'Gy,Ey,By', 'shiftFlagless', { sub: 1, feature: 'bmi2', flags: LZ }),
  });
  map3A[0xf0] = mandatory({ repeatNot: entry('rorx', 'Gy,Ey,Ib', 'rotateFlagless', { feature: 'bmi2', flags: LZ }) });
  return [map0F, map38, map3A];
}

/** ADX in the legacy 0F 38 map: 66 0F 38 F6 ADCX (carry in CF), F3 0F 38 F6 ADOX (carry in OF). */
export function addAdx(map38: Array<Slot | undefined>): void {
  map38[0xf6] = mandatory({
    operandSize: entry('adcx', 'Gy,Ey', 'addCarryFlag', { sub: 0, feature: 'adx' }),
    repeat: entry('adox', 'Gy,Ey', 'addCarryFlag', { sub: 1, feature: 'adx' }),
  });
}
