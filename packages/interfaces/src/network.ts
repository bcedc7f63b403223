/**
 * The device end of a network link (a NIC): Ethernet frames from the host,
 * and the back end's word that it can take guest frames again.
 *
 * Backpressure, host → guest: `receive` returns false when the NIC has no
 * receive buffers. The back end then keeps that frame (and every later one,
 * in order), stops reading its socket, and offers the frame again after
 * `notifyReceiveReady`. A frame the NIC takes (true) is the NIC's: it may
 * still drop it as real hardware does (its filter, a frame larger than the
 * guest's buffers), and counts that.
 */
export interface NetworkFrontend {
  /**
   * One Ethernet frame (destination MAC first, no FCS), at least 14 bytes.
   * The NIC copies what it keeps; the back end may reuse `frame` afterwards.
   * Returns false when it cannot take the frame now.
   */
  receive(frame: Uint8Array): boolean;
  /** The back end drained its output after `send` returned false: the NIC may transmit again. */
  transmitReady(): void;
  /**
   * The link went up or down (a stream peer connected or left, passt
   * exited); the NIC shows it to the guest (virtio-net's link status). Also
   * called by `connect` with the state at that moment.
   */
  linkChanged?(up: boolean): void;
}

/**
 * The host end of a NIC: a socket to another VM or to QEMU, passt's
 * user-mode network, a tap device, an in-memory link in tests.
 *
 * Backpressure, guest → host: `send` always takes the frame, and returns
 * false when the back end's output is full (a socket that does not drain);
 * the NIC then stops taking frames from the guest until
 * `frontend.transmitReady()`. Nothing is dropped silently, except by a
 * transport that is itself lossy (datagrams), which says so.
 *
 * @example
 * ```ts
 * // A NIC with room for one frame, and a back end that holds the rest.
 * const held: Uint8Array[] = [new Uint8Array(60), new Uint8Array(60)];
 * let room = 1;
 * const nic: NetworkFrontend = { receive: () => (room > 0 ? (room--, true) : false), transmitReady: () => {} };
 * const offer = () => { while (held.length > 0 && nic.receive(held[0]!)) held.shift(); };
 * offer();
 * assert.equal(held.length, 1); // kept, not dropped
 * room = 1;                     // the guest added a receive buffer: notifyReceiveReady()
 * offer();
 * assert.equal(held.length, 0);
 * ```
 */
export interface NetworkBackend {
  /** One Ethernet frame from the guest; false when the NIC should pause until `transmitReady`. */
  send(frame: Uint8Array): boolean;
  /** Connects the NIC (a new one replaces the old, after a machine reset); frames flow to it from now on. */
  connect(frontend: NetworkFrontend): void;
  /** The NIC has receive buffers again: the back end offers what it holds and reads on. */
  notifyReceiveReady(): void;
  /** Releases the host resources (sockets, helper processes). */
  close(): Promise<void>;
}

/**
 * Hands `held` frames to the NIC in order, removing each one it takes,
 * until it refuses one (that one and the rest stay held); returns the frames
 * taken. The back ends' shared step for `notifyReceiveReady`.
 */
export function offerHeldFrames(frontend: NetworkFrontend, held: Uint8Array[]): Uint8Array[] {
  const taken: Uint8Array[] = [];
  while (held.length > 0 && frontend.receive(held[0]!)) taken.push(held.shift()!);
  return taken;
}

/** Bytes of an Ethernet header (destination, source, EtherType): the shortest frame a back end passes on. */
export const ETHERNET_HEADER_BYTES = 14;
/** The longest frame a back end passes on: a 65,535-byte IP packet plus the Ethernet header, as QEMU's net layer allows. */
export const MAX_FRAME_BYTES = 65_535 + ETHERNET_HEADER_BYTES;

/** A MAC address as six bytes, parsed from `52:54:00:12:34:56`; undefined for anything else. */
export function parseMacAddress(text: string): Uint8Array | undefined {
  const match = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(text);
  if (match === null) return undefined;
  return Uint8Array.from(match.slice(1), (part) => Number.parseInt(part, 16));
}

/** `52:54:00:12:34:56`. */
export function formatMacAddress(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, 6), (byte) => byte.toString(16).padStart(2, '0')).join(':');
}
