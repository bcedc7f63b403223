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

/** The host end: the terminal, a file, a TCP socket, an in-memory pipe. */
export interface CharacterBackend {
  /** Bytes from the guest. Backends buffer; they never block the caller. */
  write(data: Uint8Array): void;
  /** Connects the device; input flows to it from now on. */
  connect(frontend: CharacterFrontend): void;
  /** The device drained its buffer: the backend may offer more input. */
  notifyReceiveReady(): void;
}
