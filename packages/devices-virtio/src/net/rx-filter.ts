import { encodeStateBytes, type StateReader } from '@tsvirt/interfaces';

/** RX mode commands of the control queue's RX class (5.1.6.5.1); 2 to 5 need CTRL_RX_EXTRA. */
const enum RxMode {
  Promiscuous = 0,
  AllMulticast = 1,
  AllUnicast = 2,
  NoMulticast = 3,
  NoUnicast = 4,
  NoBroadcast = 5,
}

/** Entries a MAC table keeps (QEMU's MAC_TABLE_ENTRIES); a longer table lets that kind of address through. */
export const MAC_TABLE_ENTRIES = 64;

export interface RxFilterState {
  readonly modes: readonly boolean[];
  readonly unicast: readonly Uint8Array[];
  readonly multicast: readonly Uint8Array[];
  readonly unicastOverflow: boolean;
  readonly multicastOverflow: boolean;
}

/**
 * virtio-net's receive filter, as QEMU's: promiscuous after reset (Linux
 * turns it off when the interface is not promiscuous), then the device's
 * MAC, broadcast, and the MAC tables and RX modes the driver sets through
 * the control queue.
 */
export class RxFilter {
  readonly mac = new Uint8Array(6);
  /** Indexed by RxMode. */
  private modes = [true, false, false, false, false, false];
  private unicast: Uint8Array[] = [];
  private multicast: Uint8Array[] = [];
  private unicastOverflow = false;
  private multicastOverflow = false;

  constructor(mac: Uint8Array) {
    this.mac.set(mac);
  }

  reset(mac: Uint8Array): void {
    this.mac.set(mac);
    this.apply({ modes: [true, false, false, false, false, false], unicast: [], multicast: [], unicastOverflow: false, multicastOverflow: false });
  }

  /** Whether a frame for `frame`'s destination address reaches the guest. */
  accepts(frame: Uint8Array): boolean {
    const [promiscuous, allMulticast, allUnicast, noMulticast, noUnicast, noBroadcast] = this.modes;
    if (promiscuous) return true;
    const destination = frame.subarray(0, 6);
    if ((destination[0]! & 1) !== 0) {
      if (destination.every((byte) => byte === 0xff)) return !noBroadcast;
      if (noMulticast) return false;
      return allMulticast === true || this.multicastOverflow || this.multicast.some((mac) => sameMac(mac, destination));
    }
    if (noUnicast) return false;
    return sameMac(this.mac, destination) || allUnicast === true || this.unicastOverflow || this.unicast.some((mac) => sameMac(mac, destination));
  }

  /** VIRTIO_NET_CTRL_RX_*: one byte, on or off; false for a command not offered or a malformed one. */
  setMode(command: number, data: Uint8Array, extra: boolean): boolean {
    if (data.length < 1 || command > RxMode.NoBroadcast || (command > RxMode.AllMulticast && !extra)) return false;
    this.modes[command] = data[0] !== 0;
    return true;
  }

  /** VIRTIO_NET_CTRL_MAC_TABLE_SET: two tables, unicast then multicast, each a 32-bit count and the addresses. */
  setTables(data: Uint8Array): boolean {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const tables: Uint8Array[][] = [];
    let at = 0;
    for (let table = 0; table < 2; table++) {
      if (at + 4 > data.length) return false;
      const entries = view.getUint32(at, true);
      at += 4;
      if (entries > (data.length - at) / 6) return false;
      tables.push(Array.from({ length: entries }, (_, i) => data.slice(at + 6 * i, at + 6 * i + 6)));
      at += 6 * entries;
    }
    const [unicast, multicast] = tables as [Uint8Array[], Uint8Array[]];
    this.unicastOverflow = unicast.length > MAC_TABLE_ENTRIES;
    this.multicastOverflow = multicast.length > MAC_TABLE_ENTRIES;
    this.unicast = this.unicastOverflow ? [] : unicast;
    this.multicast = this.multicastOverflow ? [] : multicast;
    return true;
  }

  /** VIRTIO_NET_CTRL_MAC_ADDR_SET: the device's own address. */
  setMac(data: Uint8Array): boolean {
    if (data.length !== 6) return false;
    this.mac.set(data);
    return true;
  }

  save(): unknown {
    return {
      modes: [...this.modes],
      unicast: encodeStateBytes(concat(this.unicast)),
      multicast: encodeStateBytes(concat(this.multicast)),
      unicastOverflow: this.unicastOverflow,
      multicastOverflow: this.multicastOverflow,
    };
  }

  /** Reads `save()`'s state, validating every field. */
  static read(reader: StateReader): RxFilterState {
    const modes = reader.raw('modes');
    if (!Array.isArray(modes) || modes.length !== 6 || !modes.every((mode) => typeof mode === 'boolean')) reader.fail('modes', 'expected six booleans');
    const table = (name: string): Uint8Array[] => {
      const bytes = reader.bytes(name, 6 * MAC_TABLE_ENTRIES);
      if (bytes.length % 6 !== 0) reader.fail(name, 'expected whole 6-byte MAC addresses');
      return Array.from({ length: bytes.length / 6 }, (_, i) => bytes.slice(6 * i, 6 * i + 6));
    };
    return {
      modes: modes as boolean[],
      unicast: table('unicast'),
      multicast: table('multicast'),
      unicastOverflow: reader.boolean('unicastOverflow'),
      multicastOverflow: reader.boolean('multicastOverflow'),
    };
  }

  apply(state: RxFilterState, mac?: Uint8Array): void {
    if (mac !== undefined) this.mac.set(mac);
    this.modes = [...state.modes];
    this.unicast = state.unicast.map((entry) => entry.slice());
    this.multicast = state.multicast.map((entry) => entry.slice());
    this.unicastOverflow = state.unicastOverflow;
    this.multicastOverflow = state.multicastOverflow;
  }
}

function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concat(macs: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(6 * macs.length);
  macs.forEach((mac, i) => bytes.set(mac, 6 * i));
  return bytes;
}
