/**
 * A writer for the "newc" cpio format the Linux kernel unpacks as an
 * initramfs (Documentation/driver-api/early-userspace/buffer-format.rst):
 * a 110-byte ASCII header per entry, the name NUL-terminated, header+name and
 * data each padded to 4 bytes, and a final "TRAILER!!!" entry.
 */

export type CpioEntry =
  | { readonly kind: 'directory'; readonly path: string; readonly mode?: number }
  | { readonly kind: 'file'; readonly path: string; readonly data: Uint8Array; readonly mode?: number }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string }
  | { readonly kind: 'device'; readonly path: string; readonly character: boolean; readonly major: number; readonly minor: number; readonly mode?: number };

const TYPE_DIRECTORY = 0o040000;
const TYPE_FILE = 0o100000;
const TYPE_SYMLINK = 0o120000;
const TYPE_CHARACTER = 0o020000;
const TYPE_BLOCK = 0o060000;

function hex8(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

function padTo4(length: number): number {
  return (4 - (length % 4)) % 4;
}

/** Encodes `entries` (parents before children) as one newc archive. */
export function writeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const encoder = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let inode = 1;
  const add = (name: string, mode: number, data: Uint8Array, rdevMajor = 0, rdevMinor = 0): void => {
    const nameBytes = encoder.encode(`${name}\0`);
    const header =
      '070701' +
      [inode++, mode, 0, 0, 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, nameBytes.length, 0].map(hex8).join('');
    chunks.push(encoder.encode(header), nameBytes, new Uint8Array(padTo4(110 + nameBytes.length)), data, new Uint8Array(padTo4(data.length)));
  };
  for (const entry of entries) {
    const name = entry.path.replace(/^\/+/, '');
    if (name === '' || name.split('/').includes('..')) throw new Error(`bad archive path: ${entry.path}`);
    switch (entry.kind) {
      case 'directory':
        add(name, TYPE_DIRECTORY | (entry.mode ?? 0o755), new Uint8Array(0));
        break;
      case 'file':
        add(name, TYPE_FILE | (entry.mode ?? 0o644), entry.data);
        break;
      case 'symlink':
        add(name, TYPE_SYMLINK | 0o777, encoder.encode(entry.target));
        break;
      case 'device':
        add(name, (entry.character ? TYPE_CHARACTER : TYPE_BLOCK) | (entry.mode ?? 0o600), new Uint8Array(0), entry.major, entry.minor);
        break;
    }
  }
  inode = 0;
  add('TRAILER!!!', 0, new Uint8Array(0));
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const archive = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    archive.set(chunk, offset);
    offset += chunk.length;
  }
  return archive;
}
