/**
 * Serialises asynchronous critical sections: metadata updates of one image
 * must not interleave, while a device may issue many requests at once.
 */
export class AsyncLock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.tail.then(section, section);
    // The chain continues whether the section failed or not.
    this.tail = result.catch(() => undefined);
    return result;
  }
}
