import { DgramNetworkBackend, type HostForward, PasstNetworkBackend, type SocketAddress, StreamNetworkBackend } from '@tsvirt/backends';
import type { NetworkBackend } from '@tsvirt/interfaces';
import { DeviceOptionError, parseSubOptions, take } from './device-options.js';

/** `--netdev`: QEMU's -netdev back ends that tsvirt has. */
export type NetdevSpec =
  | { readonly kind: 'user'; readonly id: string; readonly hostForwards: readonly HostForward[] }
  | { readonly kind: 'stream'; readonly id: string; readonly server: boolean; readonly address: SocketAddress; readonly reconnectSeconds: number }
  | { readonly kind: 'dgram'; readonly id: string; readonly local: { host: string; port: number }; readonly remote: { host: string; port: number } };

const KINDS = ['user', 'stream', 'dgram'] as const;

function port(option: string, key: string, text: string | undefined): number {
  if (text === undefined) throw new DeviceOptionError(`${option}: ${key}=PORT is required`);
  const value = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= 0 && value <= 65535)) throw new DeviceOptionError(`${option}: ${key}=${text} is not a port (0 to 65535)`);
  return value;
}

/** `PREFIX.type=inet,PREFIX.host=H,PREFIX.port=P` or `PREFIX.type=unix,PREFIX.path=PATH` (QEMU 7.2's SocketAddress). */
function socketAddress(option: string, prefix: string, values: Map<string, string>, unix: boolean): SocketAddress {
  const type = take(values, `${prefix}.type`);
  if (type === undefined) throw new DeviceOptionError(`${option}: ${prefix}.type=inet${unix ? '|unix' : ''} is required`);
  if (type === 'unix' && unix) {
    const path = take(values, `${prefix}.path`);
    if (path === undefined || path === '') throw new DeviceOptionError(`${option}: ${prefix}.path=PATH is required with ${prefix}.type=unix`);
    return { type: 'unix', path };
  }
  if (type !== 'inet') throw new DeviceOptionError(`${option}: ${prefix}.type=${type} is not ${unix ? 'inet or unix' : 'inet'}`);
  const host = take(values, `${prefix}.host`);
  if (host === undefined || host === '') throw new DeviceOptionError(`${option}: ${prefix}.host=HOST is required`);
  return { type: 'inet', host, port: port(option, `${prefix}.port`, take(values, `${prefix}.port`)) };
}

/** QEMU's `hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT` (passt forwards to the guest's one address). */
export function parseHostForward(text: string): HostForward {
  const match = /^(tcp|udp)?:([^:]*):(\d+)-([^:]*):(\d+)$/.exec(text);
  if (match === null) throw new DeviceOptionError(`--netdev user: hostfwd=${text} is not tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT`);
  if (match[4] !== '') throw new DeviceOptionError(`--netdev user: hostfwd=${text}: the guest address cannot be chosen (passt forwards to the guest's address); leave it empty`);
  const hostPort = Number(match[3]);
  const guestPort = Number(match[5]);
  for (const value of [hostPort, guestPort]) if (value < 1 || value > 65535) throw new DeviceOptionError(`--netdev user: hostfwd=${text}: port ${value} is not 1 to 65535`);
  return { protocol: (match[1] ?? 'tcp') as 'tcp' | 'udp', ...(match[2] === '' ? {} : { hostAddress: match[2]! }), hostPort, guestPort };
}

export function parseNetdev(text: string): NetdevSpec {
  // hostfwd may be given several times (QEMU's way); the other keys once.
  const hostForwards: string[] = [];
  const rest = text.replace(/(^|,)hostfwd=([^,]*)/g, (_, _comma: string, forward: string) => {
    hostForwards.push(forward);
    return '';
  });
  const { name, values } = parseSubOptions(rest, '--netdev', true);
  if (name === undefined) throw new DeviceOptionError(`--netdev: the first item must be the back end (${KINDS.join(', ')})`);
  const option = `--netdev ${name}`;
  const id = take(values, 'id');
  if (!(KINDS as readonly string[]).includes(name)) throw new DeviceOptionError(`--netdev: '${name}' is not a network back end tsvirt has (known: ${KINDS.join(', ')})`);
  if (id === undefined || !/^[A-Za-z][\w.-]*$/.test(id)) throw new DeviceOptionError(`${option}: id=ID is required (a letter, then letters, digits, '-', '.', '_')`);
  if (hostForwards.length > 0 && name !== 'user') throw new DeviceOptionError(`${option}: hostfwd is for --netdev user`);
  let spec: NetdevSpec;
  switch (name) {
    case 'user':
      spec = { kind: 'user', id, hostForwards: hostForwards.map(parseHostForward) };
      break;
    case 'stream': {
      const server = take(values, 'server') ?? 'off';
      if (server !== 'on' && server !== 'off') throw new DeviceOptionError(`${option}: server=${server} is not on or off`);
      const reconnect = take(values, 'reconnect') ?? '0';
      if (!/^\d{1,6}$/.test(reconnect)) throw new DeviceOptionError(`${option}: reconnect=${reconnect} is not a number of seconds`);
      spec = { kind: 'stream', id, server: server === 'on', address: socketAddress(option, 'addr', values, true), reconnectSeconds: Number(reconnect) };
      break;
    }
    default: {
      const local = socketAddress(option, 'local', values, false);
      const remote = socketAddress(option, 'remote', values, false);
      if (local.type !== 'inet' || remote.type !== 'inet') throw new DeviceOptionError(`${option}: local and remote must be inet`);
      spec = { kind: 'dgram', id, local: { host: local.host, port: local.port }, remote: { host: remote.host, port: remote.port } };
    }
  }
  const [unknown] = values.keys();
  if (unknown !== undefined) throw new DeviceOptionError(`${option}: unknown option '${unknown}'`);
  return spec;
}

/** Opens every back end before the guest runs (passt started, sockets listening or connected); a failure closes what was opened. */
export async function openNetdevs(specs: readonly NetdevSpec[]): Promise<Map<string, NetworkBackend>> {
  const opened = new Map<string, NetworkBackend>();
  try {
    for (const spec of specs) {
      if (opened.has(spec.id)) throw new DeviceOptionError(`--netdev: id '${spec.id}' is used twice`);
      try {
        opened.set(spec.id, await openNetdev(spec));
      } catch (error) {
        if (error instanceof DeviceOptionError) throw error;
        throw new DeviceOptionError(`--netdev ${spec.kind},id=${spec.id}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return opened;
  } catch (error) {
    for (const backend of opened.values()) await backend.close();
    throw error;
  }
}

function openNetdev(spec: NetdevSpec): Promise<NetworkBackend> {
  switch (spec.kind) {
    case 'user':
      return PasstNetworkBackend.open({ hostForwards: spec.hostForwards });
    case 'stream':
      return StreamNetworkBackend.open({ server: spec.server, address: spec.address, reconnectSeconds: spec.reconnectSeconds });
    case 'dgram':
      return DgramNetworkBackend.open({ local: spec.local, remote: spec.remote });
  }
}
