/** A promise with its settle functions, pre-handled so an unobserved rejection is not reported as unhandled. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
  readonly settled: boolean;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  promise.catch(() => {});
  const result = {
    promise,
    settled: false,
    resolve(value: T) {
      result.settled = true;
      resolve(value);
    },
    reject(reason: unknown) {
      result.settled = true;
      reject(reason);
    },
  };
  return result;
}
