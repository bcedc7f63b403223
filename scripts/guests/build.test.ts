import { describe, expect, it } from 'vitest';
import { moduleDependencies, resolveModules } from './build.js';

/** A fake .ko: what matters to the kit is the NUL-separated .modinfo strings. */
function fakeModule(depends: string): Uint8Array {
  return new TextEncoder().encode(`\x7fELF junk\0license=GPL\0depends=${depends}\0name=x\0`);
}

describe('guest kit module resolution', () => {
  it('reads the depends= list from a module', () => {
    expect(moduleDependencies(fakeModule('virtio,virtio_ring'))).toEqual(['virtio', 'virtio_ring']);
    expect(moduleDependencies(fakeModule(''))).toEqual([]);
    expect(moduleDependencies(new TextEncoder().encode('no modinfo here'))).toEqual([]);
  });

  it('orders dependencies before the modules that need them, once each', () => {
    const files = new Map([
      ['virtio_blk', 'drivers/block/virtio_blk.ko'],
      ['virtio_net', 'drivers/net/virtio_net.ko'],
      ['virtio', 'drivers/virtio/virtio.ko'],
      ['virtio_ring', 'drivers/virtio/virtio_ring.ko'],
      ['net_failover', 'drivers/net/net_failover.ko'],
    ]);
    const depends: Record<string, string> = {
      'drivers/block/virtio_blk.ko': 'virtio,virtio_ring',
      'drivers/net/virtio_net.ko': 'net_failover,virtio,virtio_ring',
      'drivers/virtio/virtio_ring.ko': 'virtio',
      'drivers/virtio/virtio.ko': '',
      'drivers/net/net_failover.ko': '',
    };
    const order = resolveModules(['virtio-blk', 'virtio_net'], files, (file) => fakeModule(depends[file]!));
    expect(order).toEqual([
      'drivers/virtio/virtio.ko',
      'drivers/virtio/virtio_ring.ko',
      'drivers/block/virtio_blk.ko',
      'drivers/net/net_failover.ko',
      'drivers/net/virtio_net.ko',
    ]);
    expect(() => resolveModules(['nonexistent'], files, () => fakeModule(''))).toThrow(/no kernel module named nonexistent/);
  });

  it('survives a dependency loop', () => {
    const files = new Map([
      ['a', 'a.ko'],
      ['b', 'b.ko'],
    ]);
    const order = resolveModules(['a'], files, (file) => fakeModule(file === 'a.ko' ? 'b' : 'a'));
    expect(order.sort()).toEqual(['a.ko', 'b.ko']);
  });
});
