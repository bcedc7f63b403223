import { balloonQmpCommands, type QmpBalloon } from './balloon-commands.js';
import { machineQmpCommands, tsvirtQmpVersion } from './machine-commands.js';
import { QmpListener, type QmpEndpoint } from './qmp-listener.js';
import { QmpMonitor } from './qmp-monitor.js';
import { VmController } from './vm-controller.js';

export interface QmpServerOptions {
  /** Sockets to listen on; none is a VM without a monitor (its controller still works). */
  readonly endpoints: readonly QmpEndpoint[];
  /** Start in QEMU's `prelaunch` state, paused until `cont`. */
  readonly startPaused?: boolean;
  readonly noReboot?: boolean;
  /** The VM's name (`--name`). */
  readonly name?: string;
  /** query-version's `package` text. */
  readonly packageText?: string;
  /** The VM's balloon device, for `balloon` and `query-balloon` (asked at every call). */
  readonly balloon?: () => QmpBalloon | undefined;
}

/**
 * The QMP monitor of one VM process: a {@link VmController} for its run
 * state, the machine commands on a {@link QmpMonitor}, and a
 * {@link QmpListener} per endpoint. The run loop passes each machine it
 * boots to `controller.run`.
 */
export class QmpServer {
  private constructor(
    readonly controller: VmController,
    readonly monitor: QmpMonitor,
    readonly listeners: readonly QmpListener[],
  ) {}

  static async start(options: QmpServerOptions): Promise<QmpServer> {
    const version = tsvirtQmpVersion(options.packageText);
    // Events go to the monitor, which is built next: the controller emits only once commands run.
    const controller = new VmController({ startPaused: options.startPaused, noReboot: options.noReboot, emit: (event, data) => monitor.emit(event, data) });
    const commands = new Map([...machineQmpCommands(controller, version, { name: options.name, threadId: process.pid }), ...balloonQmpCommands(options.balloon ?? (() => undefined))]);
    const monitor = new QmpMonitor({ version, commands });
    const listeners: QmpListener[] = [];
    try {
      for (const endpoint of options.endpoints) listeners.push(await QmpListener.listen(monitor, endpoint));
    } catch (error) {
      await Promise.all(listeners.map((listener) => listener.close()));
      throw error;
    }
    return new QmpServer(controller, monitor, listeners);
  }

  /** Ends every session after what was sent to it (the SHUTDOWN event, `quit`'s answer) and stops listening. */
  async close(): Promise<void> {
    await Promise.all(this.listeners.map((listener) => listener.close()));
  }
}
