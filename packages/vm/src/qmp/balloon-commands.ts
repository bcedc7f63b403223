import { QmpError, type QmpCommand } from './qmp-monitor.js';

/** What QMP needs of a balloon device: `@tsvirt/devices-virtio`'s `VirtioBalloon` is one. */
export interface QmpBalloon {
  /** The guest's target size in bytes (the device rounds to pages and keeps it within RAM). */
  setTarget(bytes: number): void;
  /** The guest's size as its driver reports it. */
  readonly actualBytes: number;
}

const NO_BALLOON = 'No balloon device has been activated';

/**
 * QMP's `balloon` and `query-balloon` (qapi/machine.json), as QEMU 7.2
 * answers them, on the VM's balloon if it has one (`balloon` is asked at
 * every call: a reset boots a machine with a new device). The BALLOON_CHANGE
 * event comes from the device's `onChange`.
 */
export function balloonQmpCommands(balloon: () => QmpBalloon | undefined): Map<string, QmpCommand> {
  const device = (): QmpBalloon => {
    const found = balloon();
    if (found === undefined) throw new QmpError('DeviceNotActive', NO_BALLOON);
    return found;
  };
  return new Map<string, QmpCommand>([
    [
      'balloon',
      {
        arguments: [{ name: 'value', type: { type: 'int' } }],
        run: (args) => {
          const target = device();
          const value = args.value as number;
          if (value <= 0) throw new QmpError('GenericError', "Parameter 'target' expects a size");
          target.setTarget(value);
          return {};
        },
      },
    ],
    ['query-balloon', { run: () => ({ actual: device().actualBytes }) }],
  ]);
}
