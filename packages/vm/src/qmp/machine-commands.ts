import { QmpError, type QmpCommand, type QmpVersion } from './qmp-monitor.js';
import { VmController, VmStateError } from './vm-controller.js';

/** The QEMU release whose QMP tsvirt speaks; query-version and the greeting report it. */
export const QMP_QEMU_VERSION = { major: 7, minor: 2, micro: 0 } as const;

export function tsvirtQmpVersion(packageText = 'tsvirt'): QmpVersion {
  return { qemu: { ...QMP_QEMU_VERSION }, package: packageText };
}

export interface MachineCommandsOptions {
  /** The VM's name (`--name`), for query-name. */
  readonly name?: string;
  /** The host thread running the vCPUs, for query-cpus-fast (the process id: one thread runs them all). */
  readonly threadId?: number;
}

/**
 * The QMP commands of a tsvirt VM process, on a {@link VmController}:
 * query-status, stop, cont, system_reset, system_powerdown, quit,
 * query-version, query-name, query-cpus-fast and query-kvm, with the
 * answers' shapes of QEMU 7.2 (qapi/*.json).
 */
export function machineQmpCommands(controller: VmController, version: QmpVersion, options: MachineCommandsOptions = {}): Map<string, QmpCommand> {
  const action = (run: () => void): QmpCommand => ({
    run: () => {
      try {
        run();
      } catch (error) {
        if (error instanceof VmStateError) throw new QmpError('GenericError', error.message);
        throw error;
      }
      return {};
    },
  });
  return new Map<string, QmpCommand>([
    ['query-status', { run: () => ({ status: controller.status, singlestep: false, running: controller.running }) }],
    ['stop', action(() => controller.stop())],
    ['cont', action(() => controller.cont())],
    ['system_reset', action(() => controller.systemReset())],
    ['system_powerdown', action(() => controller.systemPowerdown())],
    ['quit', action(() => controller.quit())],
    ['query-version', { run: () => ({ qemu: { ...version.qemu }, package: version.package }) }],
    ['query-name', { run: () => (options.name === undefined ? {} : { name: options.name }) }],
    [
      'query-cpus-fast',
      {
        run: () => [
          {
            'thread-id': options.threadId ?? 0,
            props: { 'core-id': 0, 'thread-id': 0, 'socket-id': 0 },
            'qom-path': '/machine/unattached/device[0]',
            'cpu-index': 0,
            target: 'x86_64',
          },
        ],
      },
    ],
    // No KVM here: the CPU is emulated.
    ['query-kvm', { run: () => ({ enabled: false, present: false }) }],
  ]);
}
