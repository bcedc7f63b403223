import { describe, expect, it } from 'vitest';
import { CASE_HEADER_SIZE, RESULT_HEADER_SIZE, decodeResults, encodeCases, validateCase, vectorName } from './protocol.js';
import type { OracleCase } from './types.js';

describe('oracle protocol', () => {
  it('encodes a case as header, code and memory, truncating registers to the mode width', () => {
    const testCase: OracleCase = {
      bits: 32,
      code: Uint8Array.of(0x01, 0xd8),
      registers: [-1n, 2n, 0n, 0n, 0n, 0n, 0n, 0x1_0000_0003n],
      rflags: 0xffff_ffff,
      memory: Uint8Array.of(9, 8, 7),
    };
    const bytes = encodeCases([testCase]);
    const view = new DataView(bytes.buffer);
    expect(bytes.length).toBe(CASE_HEADER_SIZE + 2 + 3);
    expect([view.getUint8(0), view.getUint8(1), view.getUint16(2, true)]).toEqual([32, 2, 3]);
    expect(view.getUint32(4, true)).toBe(0xcd5);
    expect(view.getBigUint64(8, true)).toBe(0xffff_ffffn);
    expect(view.getBigUint64(8 + 7 * 8, true)).toBe(3n);
    expect(view.getBigUint64(8 + 8 * 8, true)).toBe(0n);
    expect(Array.from(bytes.subarray(CASE_HEADER_SIZE))).toEqual([0x01, 0xd8, 9, 8, 7]);
  });

  it('decodes complete results only, with the fault named from the vector', () => {
    const testCase: OracleCase = { bits: 64, code: new Uint8Array(0), registers: new Array<bigint>(16).fill(0n), memory: new Uint8Array(2) };
    const bytes = new Uint8Array(2 * (RESULT_HEADER_SIZE + 2) - 1);
    const view = new DataView(bytes.buffer);
    view.setUint8(0, 1); // status: fault in the code
    view.setUint8(1, 8); // SIGFPE
    view.setUint8(2, 0); // vector 0
    view.setBigUint64(24, 0x2000_0000n, true);
    view.setBigUint64(40 + 8 * 15, 0xffff_ffff_ffff_ffffn, true);
    bytes[RESULT_HEADER_SIZE + 1] = 0xab;
    const results = decodeResults(bytes, [testCase, testCase]);
    expect(results).toHaveLength(1);
    expect(results[0]?.fault).toMatchObject({ kind: 'exception', vector: 0, name: '#DE', signal: 'SIGFPE' });
    expect(results[0]?.registers[15]).toBe(0xffff_ffff_ffff_ffffn);
    expect(Array.from(results[0]?.memory ?? [])).toEqual([0, 0xab]);
    expect(vectorName(14)).toBe('#PF');
  });

  it('rejects cases the harness cannot take', () => {
    const registers = new Array<bigint>(8).fill(0n);
    expect(() => validateCase({ bits: 32, code: new Uint8Array(256), registers }, 4)).toThrow(/case 4: code/);
    expect(() => validateCase({ bits: 32, code: new Uint8Array(1), registers, memory: new Uint8Array(4097) }, 0)).toThrow(/4096/);
    expect(() => validateCase({ bits: 16 as 32, code: new Uint8Array(1), registers }, 0)).toThrow(/64 or 32/);
  });
});
