import {
  CONTROL, EXCHANGE, NO_WAIT, STORE_POP, STORE_TRUNCATE, UNORDERED, X87Control as CONTROL_OPERATION, X87Environment as ENVIRONMENT, X87Form as FORM, X87Load as LOAD,
  X87Operation as OPERATION, X87Store as STORE, X87Transcendental as TRANSCENDENTAL, X87Unary as UNARY,
} from '../fpu/x87-codes.js';
import { byRm, entry, group, type OpcodeEntry, type Slot } from './opcode-entry.js';

/*
 * The x87 escapes D8–DF (Intel SDM vol. 2, tables ). `sub` values
 * are the codes of src/fpu/x87-codes.ts (FCMOVcc: the Jcc condition code;
 * FCOM/FUCOM register forms: the number of pops). Encodings left out (the
 * undocumented aliases, FNENI/FNDISI/FNSETPM) keep the `fpuEscape` entry:
 * #NM when CR0.EM/TS ask for it, #UD otherwise. FISTTP needs SSE3.
 */

const ARITHMETIC = ['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr'] as const;
const INTEGER_ARITHMETIC = ['fiadd', 'fimul', 'ficom', 'ficomp', 'fisub', 'fisubr', 'fidiv', 'fidivr'] as const;

function escapeEntry(): OpcodeEntry {
  return entry('(x87)', 'Ev', 'fpuEscape');
}

/** Fills the holes of a ModRM.reg or ModRM.rm row with the #NM/#UD escape. */
function fill(slots: ReadonlyArray<Slot | undefined>): Array<Slot | undefined> {
  const escape = escapeEntry();
  return Array.from({ length: 8 }, (_, index) => slots[index] ?? escape);
}

function arithmeticMemory(names: readonly string[], operand: string, form: number): Array<Slot | undefined> {
  return names.map((name, operation) => entry(name, operand, 'x87Arithmetic', { sub: operation | (form << 4) }));
}

function load(name: string, operand: string, source: number): OpcodeEntry {
  return entry(name, operand, 'x87Load', { sub: source });
}
function store(name: string, operand: string, target: number): OpcodeEntry {
  return entry(name, operand, 'x87Store', { sub: target });
}
/** FISTTP (SSE3): a truncating integer store that pops. */
function storeTruncating(operand: string, target: number): OpcodeEntry {
  return entry('fisttp', operand, 'x87Store', { sub: target | STORE_POP | STORE_TRUNCATE, feature: 'sse3' });
}
function control(name: string, operand: string, operation: number, noWait = false): OpcodeEntry {
  return entry(name, operand, 'x87Control', { sub: operation | CONTROL | (noWait ? NO_WAIT : 0) });
}
function environment(name: string, operation: number): OpcodeEntry {
  const noWait = operation === ENVIRONMENT.store || operation === ENVIRONMENT.save;
  return entry(name, 'M', 'x87Environment', { sub: operation | CONTROL | (noWait ? NO_WAIT : 0) });
}
function unary(name: string, operation: number): OpcodeEntry {
  return entry(name, '', 'x87Unary', { sub: operation });
}
function transcendental(name: string, operation: number): OpcodeEntry {
  return entry(name, '', 'x87Transcendental', { sub: operation });
}

/** Slots D8–DF of the one-byte map. */
export function x87Escapes(): Array<Slot | undefined> {
  const d8 = group(
    arithmeticMemory(ARITHMETIC, 'Md', FORM.float32),
    ARITHMETIC.map((name, operation) => entry(name, operation === OPERATION.compare || operation === OPERATION.comparePop ? 'sti' : 'st0,sti', 'x87Arithmetic', { sub: operation | (FORM.stackTopFirst << 4) })),
  );
  const d9 = group(
    fill([
      load('fld', 'Md', LOAD.float32), undefined, store('fst', 'Md', STORE.float32), store('fstp', 'Md', STORE.float32 | STORE_POP), environment('fldenv', ENVIRONMENT.load),
      control('fldcw', 'Mw', CONTROL_OPERATION.loadControl), environment('fnstenv', ENVIRONMENT.store), control('fnstcw', 'Mw', CONTROL_OPERATION.storeControl, true),
    ]),
    fill([
      load('fld', 'sti', LOAD.register),
      entry('fxch', 'sti', 'x87Exchange', { sub: EXCHANGE }),
      byRm(fill([entry('fnop', '', 'x87Control', { sub: CONTROL_OPERATION.nop })])),
      undefined,
      byRm(fill([unary('fchs', UNARY.changeSign), unary('fabs', UNARY.absolute), undefined, undefined, unary('ftst', UNARY.test), unary('fxam', UNARY.examine)])),
      byRm(fill(['fld1', 'fldl2t', 'fldl2e', 'fldpi', 'fldlg2', 'fldln2', 'fldz'].map((name, index) => load(name, '', LOAD.constant + index)))),
      byRm(fill([
        transcendental('f2xm1', TRANSCENDENTAL.powerMinusOne), transcendental('fyl2x', TRANSCENDENTAL.logarithm), transcendental('fptan', TRANSCENDENTAL.tangent),
        transcendental('fpatan', TRANSCENDENTAL.arcTangent), unary('fxtract', UNARY.extract), unary('fprem1', UNARY.remainderNearest),
        entry('fdecstp', '', 'x87Control', { sub: CONTROL_OPERATION.decrementTop }), entry('fincstp', '', 'x87Control', { sub: CONTROL_OPERATION.incrementTop }),
      ])),
      byRm(fill([
        unary('fprem', UNARY.remainder), transcendental('fyl2xp1', TRANSCENDENTAL.logarithmPlusOne), unary('fsqrt', UNARY.squareRoot),
        transcendental('fsincos', TRANSCENDENTAL.sineCosine), unary('frndint', UNARY.roundToInteger), unary('fscale', UNARY.scale),
        transcendental('fsin', TRANSCENDENTAL.sine), transcendental('fcos', TRANSCENDENTAL.cosine),
      ])),
    ]),
  );
  const da = group(
    arithmeticMemory(INTEGER_ARITHMETIC, 'Md', FORM.int32),
    fill([
      entry('fcmovb', 'st0,sti', 'x87Exchange', { sub: 2, feature: 'cmov' }),
      entry('fcmove', 'st0,sti', 'x87Exchange', { sub: 4, feature: 'cmov' }),
      entry('fcmovbe', 'st0,sti', 'x87Exchange', { sub: 6, feature: 'cmov' }),
      entry('fcmovu', 'st0,sti', 'x87Exchange', { sub: 10, feature: 'cmov' }),
      undefined,
      byRm(fill([undefined, entry('fucompp', '', 'x87CompareRegister', { sub: 2 | UNORDERED })])),
    ]),
  );
  const db = group(
    fill([
      load('fild', 'Md', LOAD.int32), storeTruncating('Md', STORE.int32), store('fist', 'Md', STORE.int32), store('fistp', 'Md', STORE.int32 | STORE_POP), undefined,
      load('fld', 'Mt', LOAD.extended), undefined, store('fstp', 'Mt', STORE.extended | STORE_POP),
    ]),
    fill([
      entry('fcmovnb', 'st0,sti', 'x87Exchange', { sub: 3, feature: 'cmov' }),
      entry('fcmovne', 'st0,sti', 'x87Exchange', { sub: 5, feature: 'cmov' }),
      entry('fcmovnbe', 'st0,sti', 'x87Exchange', { sub: 7, feature: 'cmov' }),
      entry('fcmovnu', 'st0,sti', 'x87Exchange', { sub: 11, feature: 'cmov' }),
      byRm(fill([undefined, undefined, control('fnclex', '', CONTROL_OPERATION.clearExceptions, true), control('fninit', '', CONTROL_OPERATION.init, true)])),
      entry('fucomi', 'st0,sti', 'x87CompareFlags', { sub: UNORDERED }),
      entry('fcomi', 'st0,sti', 'x87CompareFlags', { sub: 0 }),
    ]),
  );
  // DC/DE register forms write ST(i); their /4–/7 rows swap the plain and reverse forms relative to D8.
  const reverseRows = ['fadd', 'fmul', undefined, undefined, 'fsubr', 'fsub', 'fdivr', 'fdiv'] as const;
  const reverseOperations = [
    OPERATION.add, OPERATION.multiply, OPERATION.compare, OPERATION.comparePop,
    OPERATION.subtractReverse, OPERATION.subtract, OPERATION.divideReverse, OPERATION.divide,
  ] as const;
  const stackTopSecond = (pop: boolean): Array<Slot | undefined> =>
    fill(reverseRows.map((name, row) => (name === undefined ? undefined : entry(pop ? `${name}p` : name, 'sti,st0', 'x87Arithmetic', { sub: reverseOperations[row]! | ((pop ? FORM.stackTopSecondPop : FORM.stackTopSecond) << 4) }))));
  const dc = group(arithmeticMemory(ARITHMETIC, 'Mq', FORM.float64), stackTopSecond(false));
  const dd = group(
    fill([
      load('fld', 'Mq', LOAD.float64), storeTruncating('Mq', STORE.int64), store('fst', 'Mq', STORE.float64), store('fstp', 'Mq', STORE.float64 | STORE_POP), environment('frstor', ENVIRONMENT.restore), undefined,
      environment('fnsave', ENVIRONMENT.save),
      control('fnstsw', 'Mw', CONTROL_OPERATION.storeStatusMemory, true),
    ]),
    fill([
      entry('ffree', 'sti', 'x87Control', { sub: CONTROL_OPERATION.free }), undefined, store('fst', 'sti', STORE.register), store('fstp', 'sti', STORE.register | STORE_POP),
      entry('fucom', 'sti', 'x87CompareRegister', { sub: UNORDERED }), entry('fucomp', 'sti', 'x87CompareRegister', { sub: 1 | UNORDERED }),
    ]),
  );
  const deRegister = stackTopSecond(true);
  deRegister[3] = byRm(fill([undefined, entry('fcompp', '', 'x87CompareRegister', { sub: 2 })]));
  const de = group(arithmeticMemory(INTEGER_ARITHMETIC, 'Mw', FORM.int16), deRegister);
  const df = group(
    fill([
      load('fild', 'Mw', LOAD.int16), storeTruncating('Mw', STORE.int16), store('fist', 'Mw', STORE.int16), store('fistp', 'Mw', STORE.int16 | STORE_POP),
      load('fbld', 'Mt', LOAD.bcd), load('fild', 'Mq', LOAD.int64), store('fbstp', 'Mt', STORE.bcd | STORE_POP), store('fistp', 'Mq', STORE.int64 | STORE_POP),
    ]),
    fill([
      undefined, undefined, undefined, undefined,
      byRm(fill([control('fnstsw', 'ax', CONTROL_OPERATION.storeStatusAx, true)])),
      entry('fucomip', 'st0,sti', 'x87CompareFlags', { sub: 1 | UNORDERED }),
      entry('fcomip', 'st0,sti', 'x87CompareFlags', { sub: 1 }),
    ]),
  );
  return [d8, d9, da, db, dc, dd, de, df];
}
