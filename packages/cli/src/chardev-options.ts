import { FileBackend, TcpClientBackend, TcpServerBackend } from '@tsvirt/backends';
import type { CharacterBackend, CharacterFrontend } from '@tsvirt/interfaces';
import { choice, DeviceOptionError, onOff, parseSubOptions, rejectRest, take } from './device-options.js';

/** `--chardev`: QEMU's host ends for character devices that tsvirt has. */
export type ChardevSpec = { readonly id: string } & (
  | { readonly backend: 'null' }
  | { readonly backend: 'file'; readonly path: string }
  | { readonly backend: 'socket'; readonly host: string; readonly port: number; readonly server: boolean }
);

/** A character back end that can be closed when the VM ends. */
export type OpenChardev = CharacterBackend & { close?(): unknown };

const BACKENDS = ['null', 'file', 'socket'] as const;

/**
 * `--chardev null|file|socket,id=ID,...` in QEMU's syntax: `file,path=P`;
 * `socket,host=H,port=P[,server=on,wait=off]` (TCP; a server takes one peer
 * at a time, and `wait=on`, which would hold the boot until a peer comes, is
 * refused); `null` drops output and gives no input.
 */
export function parseChardev(text: string): ChardevSpec {
  const { name, values } = parseSubOptions(text, '--chardev', true);
  const option = `--chardev ${name ?? ''}`.trim();
  const id = take(values, 'id');
  if (name === undefined || !(BACKENDS as readonly string[]).includes(name)) throw new DeviceOptionError(`--chardev: '${name ?? text}' is not a back end tsvirt has (known: ${BACKENDS.join(', ')})`);
  if (id === undefined || id === '') throw new DeviceOptionError(`${option}: id=ID is required`);
  let spec: ChardevSpec;
  if (name === 'null') {
    spec = { id, backend: 'null' };
  } else if (name === 'file') {
    const path = take(values, 'path');
    if (path === undefined || path === '') throw new DeviceOptionError(`${option}: path=FILE is required`);
    spec = { id, backend: 'file', path };
  } else {
    if (values.has('path')) throw new DeviceOptionError(`${option}: Unix sockets (path=) are not supported yet; use host= and port=`);
    const portText = take(values, 'port');
    const port = portText === undefined ? Number.NaN : Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535 || !/^\d+$/.test(portText ?? '')) throw new DeviceOptionError(`${option}: port=${portText ?? ''} is not a TCP port`);
    const server = onOff(option, 'server', take(values, 'server'));
    // QEMU's wait defaults to on for a server.
    const wait = choice(option, 'wait', take(values, 'wait'), ['on', 'off'], server ? 'on' : 'off') === 'on';
    if (server && wait) throw new DeviceOptionError(`${option}: wait=on is not supported; give server=on,wait=off`);
    spec = { id, backend: 'socket', host: take(values, 'host') ?? '127.0.0.1', port, server };
  }
  rejectRest(option, values);
  return spec;
}

/** Opens every chardev before the guest runs (a file that cannot take output, a port in use: a DeviceOptionError); ids must be unique. */
export async function openChardevs(specs: readonly ChardevSpec[]): Promise<Map<string, OpenChardev>> {
  const opened = new Map<string, OpenChardev>();
  try {
    for (const spec of specs) {
      if (opened.has(spec.id)) throw new DeviceOptionError(`--chardev: id '${spec.id}' is used twice`);
      opened.set(spec.id, await openChardev(spec));
    }
  } catch (error) {
    for (const chardev of opened.values()) await chardev.close?.();
    throw error;
  }
  return opened;
}

async function openChardev(spec: ChardevSpec): Promise<OpenChardev> {
  switch (spec.backend) {
    case 'null':
      return new NullChardev();
    case 'file':
      try {
        return await FileBackend.open(spec.path);
      } catch (error) {
        throw new DeviceOptionError(`--chardev file,id=${spec.id}: could not open '${spec.path}': ${(error as Error).message}`);
      }
    case 'socket': {
      if (!spec.server) return new TcpClientBackend({ host: spec.host, port: spec.port });
      const server = new TcpServerBackend({ host: spec.host, port: spec.port });
      try {
        await server.listen();
      } catch (error) {
        throw new DeviceOptionError(`--chardev socket,id=${spec.id}: could not listen on ${spec.host}:${spec.port}: ${(error as Error).message}`);
      }
      return server;
    }
  }
}

/** QEMU's `-chardev null`: output goes nowhere, no input ever comes. */
class NullChardev implements CharacterBackend {
  write(): void {}
  connect(_frontend: CharacterFrontend): void {}
  notifyReceiveReady(): void {}
}
