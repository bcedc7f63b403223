import { spawnSync } from 'node:child_process';
import { formatMacAddress } from '@tsvirt/interfaces';
import { describe, expect, it } from 'vitest';
import { RecordingNetworkFrontend } from '../testing/index.js';
import { PasstError, PasstNetworkBackend } from './passt-backend.js';

const passt = spawnSync('sh', ['-c', 'command -v passt']).status === 0;
if (!passt && process.env.CI) throw new Error('the passt tests cannot run: install passt (scripts/install-system-deps.sh)');

const GUEST_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);

/** An ARP request from the guest: who has 10.0.0.1? tell 10.0.0.2. */
function arpRequest(): Uint8Array {
  const frame = new Uint8Array(42);
  frame.fill(0xff, 0, 6);
  frame.set(GUEST_MAC, 6);
  frame.set([0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01], 12);
  frame.set(GUEST_MAC, 22);
  frame.set([10, 0, 0, 2], 28);
  frame.set([10, 0, 0, 1], 38);
  return frame;
}

describe('PasstNetworkBackend (user-mode networking through the real passt)', () => {
  it.skipIf(!passt)('starts passt, and passt answers the guest on QEMU stream framing', async () => {
    const user = await PasstNetworkBackend.open();
    try {
      const nic = new RecordingNetworkFrontend();
      user.connect(nic);
      expect(user.linkUp).toBe(true);
      expect(user.send(arpRequest())).toBe(true);
      await nic.waitForFrames(1);
      const reply = nic.frames[0]!;
      expect(formatMacAddress(reply.subarray(0, 6))).toBe('52:54:00:12:34:56');
      expect(Array.from(reply.subarray(12, 14))).toEqual([0x08, 0x06]);
      expect(Array.from(reply.subarray(20, 22))).toEqual([0x00, 0x02]); // an ARP reply
      expect(Array.from(reply.subarray(28, 32))).toEqual([10, 0, 0, 1]); // for the address asked about
      expect(user.statistics).toMatchObject({ sentFrames: 1, receivedFrames: 1, dropped: 0 });
    } finally {
      await user.close();
    }
    expect(user.linkUp).toBe(false);
  });

  it('says clearly when passt is not there', async () => {
    await expect(PasstNetworkBackend.open({ passt: '/nonexistent/passt' })).rejects.toThrow(PasstError);
    await expect(PasstNetworkBackend.open({ passt: '/nonexistent/passt' })).rejects.toThrow(/\/nonexistent\/passt is not installed.*apt-get install passt/);
  });

  it('refuses a port forward outside 1 to 65535 before starting passt', async () => {
    await expect(PasstNetworkBackend.open({ hostForwards: [{ protocol: 'tcp', hostPort: 0, guestPort: 80 }] })).rejects.toThrow(/port 0 is not 1 to 65535/);
  });
});
