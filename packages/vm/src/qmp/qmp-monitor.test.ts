import { describe, expect, it } from 'vitest';
import type { MachineExit } from '../machine/pc-machine.js';
import { machineQmpCommands, tsvirtQmpVersion } from './machine-commands.js';
import { QmpMonitor, formatQmpJson } from './qmp-monitor.js';
import { VmController, type ControllableMachine } from './vm-controller.js';

/** A machine that records what it was asked and runs until told to exit. */
class FakeMachine implements ControllableMachine {
  readonly calls: string[] = [];
  private end: ((exit: MachineExit) => void) | undefined;
  run(): Promise<MachineExit> {
    return new Promise((resolve) => (this.end = resolve));
  }
  pause(): void {
    this.calls.push('pause');
  }
  resume(): void {
    this.calls.push('resume');
  }
  stop(): void {
    this.calls.push('stop');
    this.end?.({ kind: 'stopped' });
  }
  requestReset(source: string): void {
    this.calls.push(`reset ${source}`);
    this.end?.({ kind: 'reset', source });
  }
  pressPowerButton(): void {
    this.calls.push('power button');
  }
  exit(exit: MachineExit): void {
    this.end?.(exit);
  }
}

function setup(options: { startPaused?: boolean; noReboot?: boolean; name?: string } = {}) {
  const controller = new VmController({ ...options, emit: (event, data) => monitor.emit(event, data) });
  const version = tsvirtQmpVersion('tsvirt test');
  const monitor = new QmpMonitor({ version, commands: machineQmpCommands(controller, version, { name: options.name, threadId: 42 }), now: () => 1_700_000_000_123.456 });
  const client = () => {
    const lines: unknown[] = [];
    let closed = false;
    const session = monitor.connect({ send: (text) => lines.push(...text.split('\r\n').filter((line) => line !== '').map((line) => JSON.parse(line))), close: () => (closed = true) });
    return {
      session,
      /** Sends text and returns (and forgets) what came back. */
      send(text: string): unknown[] {
        session.receive(new TextEncoder().encode(text));
        return lines.splice(0);
      },
      take: () => lines.splice(0),
      get closed() {
        return closed;
      },
    };
  };
  return { controller, monitor, client };
}

/** A client past the greeting and capabilities negotiation. */
function negotiated<Client extends { take(): unknown[]; send(text: string): unknown[] }>(qmp: Client): Client {
  qmp.take();
  qmp.send('{"execute":"qmp_capabilities"}');
  return qmp;
}

const timestamp = { seconds: 1_700_000_000, microseconds: 123_456 };

describe('QMP monitor', () => {
  it('greets, negotiates, and runs the machine commands with QEMU 7.2 answers', async () => {
    const { controller, client } = setup({ name: 'guest1' });
    const machine = new FakeMachine();
    const running = controller.run(machine);
    const qmp = client();
    expect(qmp.take()).toEqual([{ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'tsvirt test' }, capabilities: ['oob'] } }]);
    expect(qmp.send('{"execute":"query-status","id":1}')).toEqual([{ id: 1, error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } }]);
    expect(qmp.send('{"execute":"qmp_capabilities","id":"a"}')).toEqual([{ return: {}, id: 'a' }]);
    expect(qmp.send('{"execute":"qmp_capabilities"}')).toEqual([{ error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' } }]);
    expect(qmp.send('{"execute":"query-status","id":{"x":[1]}}')).toEqual([{ return: { status: 'running', singlestep: false, running: true }, id: { x: [1] } }]);
    expect(qmp.send('{"execute":"stop"}')).toEqual([{ timestamp, event: 'STOP' }, { return: {} }]);
    expect(qmp.send('{"execute":"stop"}')).toEqual([{ return: {} }]);
    expect(qmp.send('{"execute":"query-status"}')).toEqual([{ return: { status: 'paused', singlestep: false, running: false } }]);
    expect(qmp.send('{"execute":"cont"}')).toEqual([{ timestamp, event: 'RESUME' }, { return: {} }]);
    expect(qmp.send('{"execute":"query-name"}{"execute":"query-kvm"}')).toEqual([{ return: { name: 'guest1' } }, { return: { enabled: false, present: false } }]);
    expect(qmp.send('{"execute":"query-version"}')).toEqual([{ return: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'tsvirt test' } }]);
    expect(qmp.send('{"execute":"query-cpus-fast"}')).toEqual([
      { return: [{ 'thread-id': 42, props: { 'core-id': 0, 'thread-id': 0, 'socket-id': 0 }, 'qom-path': '/machine/unattached/device[0]', 'cpu-index': 0, target: 'x86_64' }] },
    ]);
    const commands = (qmp.send('{"execute":"query-commands"}')[0] as { return: { name: string }[] }).return.map((command) => command.name);
    expect(commands).toEqual(expect.arrayContaining(['qmp_capabilities', 'query-commands', 'query-status', 'stop', 'cont', 'system_reset', 'system_powerdown', 'quit']));
    expect(qmp.send('{"execute":"system_powerdown"}')).toEqual([{ timestamp, event: 'POWERDOWN' }, { return: {} }]);
    expect(machine.calls).toEqual(['pause', 'resume', 'power button']);
    expect(qmp.send('{"execute":"quit"}')).toEqual([{ timestamp, event: 'SHUTDOWN', data: { guest: false, reason: 'host-qmp-quit' } }, { return: {} }]);
    expect(await running).toEqual({ kind: 'stopped' });
    expect(controller.status).toBe('shutdown');
  });

  it('reports a watchdog as QEMU does: WATCHDOG, then STOP and the watchdog state for pause, or the watchdog as the reset\'s cause', async () => {
    const { controller, client } = setup();
    const qmp = negotiated(client());
    const machine = new FakeMachine();
    const running = controller.run(machine);
    controller.watchdogExpired('pause');
    expect(qmp.take()).toEqual([{ timestamp, event: 'WATCHDOG', data: { action: 'pause' } }, { timestamp, event: 'STOP' }]);
    expect(qmp.send('{"execute":"query-status"}')).toEqual([{ return: { status: 'watchdog', singlestep: false, running: false } }]);
    expect(qmp.send('{"execute":"cont"}')).toEqual([{ timestamp, event: 'RESUME' }, { return: {} }]);
    controller.watchdogExpired('reset');
    machine.exit({ kind: 'reset', source: 'watchdog' });
    await running;
    expect(qmp.take()).toEqual([
      { timestamp, event: 'WATCHDOG', data: { action: 'reset' } },
      { timestamp, event: 'RESET', data: { guest: false, reason: 'watchdog' } },
    ]);
    // The next boot's guest reset is the guest's again.
    const next = new FakeMachine();
    const again = controller.run(next);
    next.exit({ kind: 'reset', source: 'keyboard controller' });
    await again;
    expect(qmp.take()).toEqual([{ timestamp, event: 'RESET', data: { guest: true, reason: 'guest-reset' } }]);
  });

  it('answers bad requests and bad arguments with the error classes and messages QEMU gives', () => {
    const { client } = setup();
    const qmp = client();
    qmp.take();
    qmp.send('{"execute":"qmp_capabilities","arguments":{"enable":["xyz"]}}');
    const error = (desc: string) => [{ error: { class: 'GenericError', desc } }];
    expect(qmp.send('{"execute":"qmp_capabilities","arguments":{"enable":"oob"}}')).toEqual(error("Invalid parameter type for 'enable', expected: array"));
    expect(qmp.send('{"execute":"qmp_capabilities","arguments":{"foo":1}}')).toEqual(error("Parameter 'foo' is unexpected"));
    expect(qmp.send('{"execute":"qmp_capabilities","arguments":{"enable":[]}}')).toEqual([{ return: {} }]);
    expect(qmp.send('{"execute":"cont","arguments":{"x":1}}')).toEqual(error("Parameter 'x' is unexpected"));
    expect(qmp.send('{"execute":"nope","id":5}')).toEqual([{ id: 5, error: { class: 'CommandNotFound', desc: 'The command nope has not been found' } }]);
    expect(qmp.send('{"blah":1}')).toEqual(error("QMP input member 'blah' is unexpected"));
    expect(qmp.send('[1,2]')).toEqual(error('QMP input must be a JSON object'));
    expect(qmp.send('"str"\n123\n')).toEqual([...error('QMP input must be a JSON object'), ...error('QMP input must be a JSON object')]);
    expect(qmp.send('{"execute":1}')).toEqual(error("QMP input member 'execute' must be a string"));
    expect(qmp.send('{"execute":"stop","arguments":[]}')).toEqual(error("QMP input member 'arguments' must be an object"));
    expect(qmp.send('{"execute":"stop","id":1,"control":{}}')).toEqual([{ id: 1, error: { class: 'GenericError', desc: "QMP input member 'control' is unexpected" } }]);
    expect(qmp.send('{"exec-oob":"query-status"}')).toEqual(error("QMP input member 'exec-oob' is unexpected"));
    expect(qmp.send('{"id":3}')).toEqual([{ id: 3, error: { class: 'GenericError', desc: "QMP input lacks member 'execute'" } }]);
    expect(qmp.send('{bad json}\n')).toEqual(error('JSON parse error, expecting value'));
    expect(qmp.send('nonsense\n')).toEqual(error("JSON parse error, invalid keyword 'nonsense'"));
    expect(qmp.send('{"execute":"query-status"}')).toEqual([{ return: { status: 'running', singlestep: false, running: true } }]);
    expect(qmp.closed).toBe(false);
  });

  it('keeps each client’s negotiation to itself and sends events only to negotiated clients', () => {
    const { client, controller } = setup();
    const first = client();
    const second = client();
    first.take();
    second.take();
    first.send('{"execute":"qmp_capabilities"}');
    expect(second.send('{"execute":"stop"}')).toEqual([{ error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } }]);
    expect(controller.status).toBe('running');
    expect(first.send('{"execute":"stop"}')).toEqual([{ timestamp, event: 'STOP' }, { return: {} }]);
    expect(second.take()).toEqual([]);
    second.send('{"execute":"qmp_capabilities"}');
    first.send('{"execute":"cont"}');
    expect(second.take()).toEqual([{ timestamp, event: 'RESUME' }]);
  });

  it('with oob negotiated, refuses exec-oob for commands that are not out-of-band', () => {
    const { client } = setup();
    const qmp = client();
    qmp.take();
    qmp.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
    expect(qmp.send('{"exec-oob":"query-status","id":3}')).toEqual([{ id: 3, error: { class: 'GenericError', desc: 'The command query-status does not support OOB' } }]);
  });

  it('starts in prelaunch with -S; a reset of a paused VM goes back to prelaunch; the next boot starts paused', async () => {
    const { controller, client } = setup({ startPaused: true });
    const qmp = negotiated(client());
    const first = new FakeMachine();
    const booted = controller.run(first);
    expect(first.calls).toEqual(['pause']);
    expect(qmp.send('{"execute":"stop"}')).toEqual([{ return: {} }]);
    expect(qmp.send('{"execute":"query-status"}')).toEqual([{ return: { status: 'prelaunch', singlestep: false, running: false } }]);
    expect(qmp.send('{"execute":"cont"}')).toEqual([{ timestamp, event: 'RESUME' }, { return: {} }]);
    qmp.send('{"execute":"stop"}');
    expect(qmp.send('{"execute":"system_reset"}')).toEqual([{ timestamp, event: 'RESET', data: { guest: false, reason: 'host-qmp-system-reset' } }, { return: {} }]);
    expect(await booted).toEqual({ kind: 'reset', source: 'host-qmp-system-reset' });
    expect(qmp.send('{"execute":"query-status"}')).toEqual([{ return: { status: 'prelaunch', singlestep: false, running: false } }]);
    const second = new FakeMachine();
    const rebooted = controller.run(second);
    expect(second.calls).toEqual(['pause']);
    // The guest resets itself: RESET from the guest; then it powers off: SHUTDOWN from the guest.
    qmp.send('{"execute":"cont"}');
    second.exit({ kind: 'reset', source: 'triple fault' });
    await rebooted;
    expect(qmp.take()).toEqual([{ timestamp, event: 'RESET', data: { guest: true, reason: 'guest-reset' } }]);
    const third = new FakeMachine();
    const last = controller.run(third);
    third.exit({ kind: 'power-off' });
    await last;
    expect(qmp.take()).toEqual([{ timestamp, event: 'SHUTDOWN', data: { guest: true, reason: 'guest-shutdown' } }]);
    expect(qmp.send('{"execute":"cont"}')).toEqual([{ error: { class: 'GenericError', desc: 'Resetting the Virtual Machine is required' } }]);
  });

  it('with --no-reboot, a reset is a SHUTDOWN', async () => {
    const { controller, client } = setup({ noReboot: true });
    const qmp = negotiated(client());
    const machine = new FakeMachine();
    const running = controller.run(machine);
    expect(qmp.send('{"execute":"system_reset"}')).toEqual([{ timestamp, event: 'SHUTDOWN', data: { guest: false, reason: 'host-qmp-system-reset' } }, { return: {} }]);
    expect((await running).kind).toBe('reset');
    expect(qmp.take()).toEqual([]);
  });

  it('writes JSON as QEMU does: spaced separators, plain ASCII', () => {
    expect(formatQmpJson({ return: { a: [1, true, null], b: 'é\u0001"' } })).toBe('{"return": {"a": [1, true, null], "b": "\\u00E9\\u0001\\""}}');
  });
});
