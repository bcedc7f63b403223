import { type QmpBalloon, QmpServer, type QmpEndpoint } from '@tsvirt/vm';
import { DeviceOptionError } from './device-options.js';

/** A bad `--qmp` or `--name`: the message is the whole one-line explanation (a DeviceOptionError, so `run` reports it as usage). */
export class QmpOptionError extends DeviceOptionError {}

const QMP_SYNTAX = 'unix:PATH,server=on,wait=off or tcp:HOST:PORT,server=on,wait=off';

/** QEMU's on/off switches, with the bare-flag forms (`server`, `nowait`) older command lines use. */
function parseSwitch(option: string, value: string | undefined, text: string): boolean {
  if (value === undefined || value === 'on' || value === 'yes' || value === 'true') return true;
  if (value === 'off' || value === 'no' || value === 'false') return false;
  throw new QmpOptionError(`--qmp ${text}: ${option}=${value} is not on or off`);
}

/**
 * `--qmp unix:PATH,server=on,wait=off` or `--qmp tcp:HOST:PORT,server=on,wait=off`,
 * QEMU's `-qmp` syntax. tsvirt listens (server=on) and never waits for a
 * client before the guest runs (wait=off); both may be left out.
 */
export function parseQmpOption(text: string): QmpEndpoint {
  const [address = '', ...options] = text.split(',');
  let server = true;
  let wait = false;
  for (const option of options) {
    const equals = option.indexOf('=');
    const key = equals < 0 ? option : option.slice(0, equals);
    const value = equals < 0 ? undefined : option.slice(equals + 1);
    if (key === 'server') server = parseSwitch(key, value, text);
    else if (key === 'wait') wait = parseSwitch(key, value, text);
    else if (key === 'nowait' && value === undefined) wait = false;
    else throw new QmpOptionError(`--qmp ${text}: unknown option '${option}' (expected ${QMP_SYNTAX})`);
  }
  if (!server) throw new QmpOptionError(`--qmp ${text}: server=off is not supported: tsvirt listens for QMP clients, it does not connect to one`);
  if (wait) throw new QmpOptionError(`--qmp ${text}: wait=on is not supported: the guest starts without waiting for a client (use -S to start paused)`);
  if (address.startsWith('unix:')) {
    const path = address.slice(5);
    if (path === '') throw new QmpOptionError(`--qmp ${text}: the Unix socket needs a path (${QMP_SYNTAX})`);
    return { kind: 'unix', path };
  }
  const tcp = /^tcp:(\[[^\]]*\]|[^:]*):(\d+)$/.exec(address);
  if (tcp !== null) {
    const port = Number(tcp[2]);
    if (port < 1 || port > 65535) throw new QmpOptionError(`--qmp ${text}: port ${tcp[2]} is not 1-65535`);
    const host = tcp[1]!.replace(/^\[(.*)\]$/, '$1');
    return { kind: 'tcp', host: host === '' ? '0.0.0.0' : host, port };
  }
  throw new QmpOptionError(`--qmp ${text}: not a QMP address (expected ${QMP_SYNTAX})`);
}

/** `--name NAME` or QEMU's `--name guest=NAME[,debug-threads=on|off]`. */
export function parseVmName(text: string): string {
  if (!text.startsWith('guest=')) {
    if (text === '') throw new QmpOptionError('--name: the name is empty');
    return text;
  }
  let name: string | undefined;
  for (const option of text.split(',')) {
    if (option.startsWith('guest=')) name = option.slice(6);
    else if (!/^debug-threads=(on|off)$/.test(option)) throw new QmpOptionError(`--name ${text}: unknown option '${option}' (expected guest=NAME[,debug-threads=on|off])`);
  }
  if (name === undefined || name === '') throw new QmpOptionError('--name: the name is empty');
  return name;
}

/** The VM process's monitor: its run state, and a listener for each `--qmp`. A socket that cannot be listened on is a one-line error. */
export async function startQmpServer(
  options: { readonly qmp: readonly QmpEndpoint[]; readonly name?: string; readonly paused: boolean; readonly noReboot: boolean },
  balloon?: () => QmpBalloon | undefined,
): Promise<QmpServer> {
  try {
    return await QmpServer.start({ endpoints: options.qmp, name: options.name, startPaused: options.paused, noReboot: options.noReboot, packageText: 'tsvirt', balloon });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new QmpOptionError(`--qmp: ${reason}`);
  }
}
