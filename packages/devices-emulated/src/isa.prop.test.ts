import { fc, test } from '@fast-check/vitest';
import { StateError, type AccessSize, type BusDevice, type Stateful } from '@tsvirt/interfaces';
import { ManualClock, MemoryCharacterBackend as PipeBackend, RecordingIrqLine } from '@tsvirt/interfaces/testing';
import { expect } from 'vitest';
import { I8042 } from './i8042/i8042.js';
import { PicPair } from './pic/pic-pair.js';
import { Pit } from './pit/pit.js';
import { Rtc } from './rtc/rtc.js';
import { SystemControlPortA } from './system-ports/system-control-port-a.js';
import { Uart } from './uart/uart.js';
import { corruptState, statePaths } from './testing/isa.js';

interface Subject {
  device: Stateful;
  ports: BusDevice[];
  clock: ManualClock;
}

const builders: Record<string, () => Subject> = {
  pic: () => {
    const pic = new PicPair();
    return { device: pic, ports: [pic.master, pic.slave, pic.elcr], clock: new ManualClock(0) };
  },
  pit: () => {
    const clock = new ManualClock(0);
    const pit = new Pit({ clock, irq: new RecordingIrqLine() });
    return { device: pit, ports: [pit, pit.portB], clock };
  },
  rtc: () => {
    const clock = new ManualClock(0);
    const rtc = new Rtc({ clock, irq: new RecordingIrqLine(), startTime: Date.UTC(2030, 0, 1) });
    return { device: rtc, ports: [rtc], clock };
  },
  uart: () => {
    const clock = new ManualClock(0);
    const uart = new Uart({ clock, irq: new RecordingIrqLine(), backend: new PipeBackend() });
    return { device: uart, ports: [uart], clock };
  },
  i8042: () => {
    const kbc = new I8042({ keyboardIrq: new RecordingIrqLine(), mouseIrq: new RecordingIrqLine() });
    return { device: kbc, ports: [kbc.data, kbc.command], clock: new ManualClock(0) };
  },
  port92: () => ({ device: new SystemControlPortA(), ports: [], clock: new ManualClock(0) }),
};

const hostile = fc.oneof(
  fc.constantFrom(-1, 0, 1, 2, 3, 7, 8, 15, 16, 17, 255, 256, 0xffff, 0x10000, 2 ** 53, -(2 ** 53), 1.5, Number.NaN, null, true, 'x', 'AAAA', [], {}, [1, 2, 3]),
  fc.integer(),
  fc.jsonValue({ maxDepth: 2 }),
);

const access = fc.record({ port: fc.nat(3), offset: fc.nat(7), size: fc.constantFrom(1 as const, 2 as const, 4 as const), value: fc.nat(0xffffffff), write: fc.boolean(), wait: fc.nat(5_000_000) });

test.prop([fc.constantFrom(...Object.keys(builders)), fc.nat(), hostile, fc.array(access, { maxLength: 60, size: 'max' })], { numRuns: 600 })(
  'a corrupted saved state is refused with StateError and changes nothing, or restored into a device that never throws',
  (kind, pick, replacement, accesses) => {
    const { device, ports, clock } = builders[kind]!();
    const saved = JSON.parse(JSON.stringify(device.save())) as unknown;
    const paths = statePaths(saved);
    const path = paths[pick % paths.length]!;
    const corrupted = corruptState(saved, path, replacement);
    try {
      device.restore(corrupted);
    } catch (error) {
      expect(error).toBeInstanceOf(StateError);
      expect(JSON.parse(JSON.stringify(device.save()))).toEqual(saved);
    }
    for (const a of accesses) {
      const port = ports[a.port % Math.max(ports.length, 1)];
      if (port === undefined) break;
      const size: AccessSize = a.size;
      const offset = size === 1 ? a.offset % 2 : 0;
      if (a.write) port.write(offset, size, size === 4 ? a.value : a.value & ((1 << (8 * size)) - 1));
      else expect(port.read(offset, size)).toBeGreaterThanOrEqual(0);
      clock.advance(a.wait);
    }
    expect(() => JSON.stringify(device.save())).not.toThrow();
  },
);
