import { StateError } from '@tsvirt/interfaces';
import { MapBus } from '@tsvirt/interfaces/testing';
import { describe, expect, it } from 'vitest';
import { DebugExit, DEBUG_EXIT_BASE } from './debug-exit.js';
import { PostCodePort, POST_CODE_PORT_BASE } from './post-code-port.js';
import { ResetControl } from './reset-control.js';
import { SystemControlPortA, SYSTEM_CONTROL_PORT_A_BASE } from './system-control-port-a.js';

describe('system ports', () => {
  it('port 0x92: bit 1 gates A20, writing bit 0 resets, bit 0 reads back 0', () => {
    const a20: boolean[] = [];
    let resets = 0;
    const port = new SystemControlPortA({ onA20Change: (on) => a20.push(on), onReset: () => resets++ });
    const bus = new MapBus();
    bus.register(SYSTEM_CONTROL_PORT_A_BASE, 1, port, 'port92');
    bus.write(0x92, 1, bus.read(0x92, 1) | 0x02); // the usual "fast A20" read-modify-write
    expect(a20).toEqual([true]);
    expect(bus.read(0x92, 1)).toBe(0x02);
    expect(resets).toBe(0);
    bus.write(0x92, 1, bus.read(0x92, 1) | 0x01);
    expect(resets).toBe(1);
    expect(bus.read(0x92, 1)).toBe(0x02); // reset bit does not stick, A20 unchanged
    bus.write(0x92, 1, 0x00);
    expect(a20).toEqual([true, false]);
    expect(port.a20).toBe(false);
  });

  it('port 0xCF9: RST_CPU resets with the kind bits 1 and 3 select', () => {
    const kinds: string[] = [];
    const rcr = new ResetControl({ onReset: (kind) => kinds.push(kind) });
    rcr.write(0, 1, 0x02);
    expect(rcr.read(0, 1)).toBe(0x02);
    expect(kinds).toEqual([]);
    rcr.write(0, 1, 0x06); // the value Linux's reboot=pci writes after 0x02
    rcr.write(0, 1, 0x04);
    rcr.write(0, 1, 0x0e);
    expect(kinds).toEqual(['hard', 'soft', 'full']);
    expect(rcr.read(0, 1)).toBe(0x0a);
    expect(rcr.read(0, 4)).toBe(0xffffffff);
  });

  it('port 0x80 records POST codes and reads all-ones', () => {
    const codes: number[] = [];
    const post = new PostCodePort({ observer: (event) => codes.push(event.code) });
    const bus = new MapBus();
    bus.register(POST_CODE_PORT_BASE, 1, post, 'post');
    bus.write(0x80, 1, 0x42);
    bus.write(0x80, 1, 0x00);
    expect(codes).toEqual([0x42, 0x00]);
    expect(post.lastCode).toBe(0x00);
    expect(bus.read(0x80, 1)).toBe(0xff);
  });

  it('isa-debug-exit reports (value << 1) | 1', () => {
    const statuses: number[] = [];
    const exit = new DebugExit({ onExit: (status) => statuses.push(status) });
    const bus = new MapBus();
    bus.register(DEBUG_EXIT_BASE, 1, exit, 'debug-exit');
    bus.write(0xf4, 1, 0x00);
    bus.write(0xf4, 1, 0x10);
    bus.write(0xf4, 1, 0xff);
    expect(statuses).toEqual([1, 0x21, 0x1ff]);
    expect(bus.read(0xf4, 1)).toBe(0xff);
  });

  it('saves and restores, rejecting bad state', () => {
    const port = new SystemControlPortA();
    port.write(0, 1, 0x02);
    const copy = new SystemControlPortA();
    copy.restore(JSON.parse(JSON.stringify(port.save())));
    expect(copy.read(0, 1)).toBe(0x02);
    expect(() => copy.restore({ version: 1, value: 0x03 })).toThrow(StateError);
    expect(() => copy.restore({ version: 1, value: 256 })).toThrow(StateError);
    const rcr = new ResetControl();
    expect(() => rcr.restore({ version: 1, value: 0x04 })).toThrow(StateError);
    rcr.restore({ version: 1, value: 0x08 });
    expect(rcr.read(0, 1)).toBe(0x08);
    const post = new PostCodePort();
    post.restore({ version: 1, lastCode: 0x55 });
    expect(post.lastCode).toBe(0x55);
    expect(() => post.restore({ version: 2, lastCode: 0 })).toThrow(StateError);
  });
});
