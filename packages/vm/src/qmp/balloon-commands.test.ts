import { describe, expect, it } from 'vitest';
import { balloonQmpCommands, type QmpBalloon } from './balloon-commands.js';
import { tsvirtQmpVersion } from './machine-commands.js';
import { QmpMonitor } from './qmp-monitor.js';

function client(balloon: QmpBalloon | undefined) {
  const monitor = new QmpMonitor({ version: tsvirtQmpVersion(), commands: balloonQmpCommands(() => balloon) });
  const lines: unknown[] = [];
  const session = monitor.connect({ send: (text) => lines.push(...text.split('\r\n').filter((line) => line !== '').map((line) => JSON.parse(line))), close: () => {} });
  const send = (text: string) => {
    session.receive(new TextEncoder().encode(text));
    return lines.splice(0);
  };
  send('{"execute":"qmp_capabilities"}');
  return { monitor, send };
}

describe('QMP balloon commands', () => {
  it('sets the target and reports the size the guest has, as QEMU 7.2 answers', () => {
    const targets: number[] = [];
    const balloon = { setTarget: (bytes: number) => targets.push(bytes), actualBytes: 512 << 20 };
    const { send } = client(balloon);
    expect(send('{"execute":"balloon","arguments":{"value":268435456}}')).toEqual([{ return: {} }]);
    expect(targets).toEqual([268435456]);
    expect(send('{"execute":"query-balloon"}')).toEqual([{ return: { actual: 512 << 20 } }]);
    expect(send('{"execute":"balloon","arguments":{"value":0}}')).toEqual([{ error: { class: 'GenericError', desc: "Parameter 'target' expects a size" } }]);
    expect(send('{"execute":"balloon","arguments":{"value":"1G"}}')).toEqual([{ error: { class: 'GenericError', desc: "Invalid parameter type for 'value', expected: integer" } }]);
    expect(send('{"execute":"balloon"}')).toEqual([{ error: { class: 'GenericError', desc: "Parameter 'value' is missing" } }]);
    expect(targets).toEqual([268435456]);
  });

  it('without a balloon device answers DeviceNotActive', () => {
    const { send } = client(undefined);
    const error = [{ error: { class: 'DeviceNotActive', desc: 'No balloon device has been activated' } }];
    expect(send('{"execute":"query-balloon"}')).toEqual(error);
    expect(send('{"execute":"balloon","arguments":{"value":1048576}}')).toEqual(error);
  });
});
