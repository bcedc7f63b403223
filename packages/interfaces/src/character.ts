/**
 * The device end of a character stream (a UART, a virtio console). The
 * backend offers input only while `receiveCapacity()` is above zero, which is
 * how a full FIFO pushes back on the host side.
 */
export interface CharacterFrontend {
  /** How many bytes the device can take now. */
  receiveCapacity(): number;
  /** Bytes from the host; never more than the last `receiveCapacity()`. */
  receive(data: Uint8Array): void;
}

/**
 * The host end: the terminal, a file, a TCP socket, an in-memory pipe.
 *
 * Edge case: input that arrives while the device has no room stays in the
 * backend until `notifyReceiveReady`; nothing is dropped by the backend.
 *
 * @example
 * ```ts
 * // A frontend with a 2-byte FIFO takes input only as fast as it has room.
 * const fifo: number[] = [];
 * const frontend: CharacterFrontend = { receiveCapacity: () => 2 - fifo.length, receive: (data) => fifo.push(...data) };
 * const pending = [0x61, 0x62, 0x63];
 * const offer = () => frontend.receive(Uint8Array.from(pending.splice(0, frontend.receiveCapacity())));
 * offer();
 * assert.deepEqual(fifo, [0x61, 0x62]);
 * fifo.length = 0;      // the guest drained the FIFO
 * offer();
 * assert.deepEqual(fifo, [0x63]);
 * ```
 */
export interface CharacterBackend {
  /** Bytes from the guest. Backends buffer; they never block the caller. */
  write(data: Uint8Array): void;
  /** Connects the device; input flows to it from now on. */
  connect(frontend: CharacterFrontend): void;
  /** The device drained its buffer: the backend may offer more input. */
  notifyReceiveReady(): void;
}
