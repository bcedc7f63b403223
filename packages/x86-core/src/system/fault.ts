/**
 * What the interpreter throws to abandon an instruction that raised a guest
 * exception. It is one frozen constant (the vector and error code live in
 * the CPU), so raising a fault allocates nothing; `run` always catches it.
 */
export const GUEST_FAULT: unique symbol = Symbol('guest fault');

/** Exception classes for the double-fault rules (Intel SDM vol. 3, table 6-5). */
export function exceptionClass(vector: number): 'benign' | 'contributory' | 'page' {
  if (vector === 14) return 'page';
  if (vector === 0 || (vector >= 10 && vector <= 13)) return 'contributory';
  return 'benign';
}

/** True for exceptions that push an error code. */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17 || vector === 21;
}
