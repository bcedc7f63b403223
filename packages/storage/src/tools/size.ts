import { ImageToolError } from '../errors.js';

const units: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** Parses a qemu-img size: bytes, or a number with a k/M/G/T/P suffix (binary units). */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) throw new ImageToolError(`invalid size ${JSON.stringify(text)}`);
  const value = Number(match[1]) * units[match[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(value)) throw new ImageToolError(`size ${JSON.stringify(text)} is not a whole number of bytes below 2^53`);
  return value;
}

/** Formats bytes the way qemu-img's human output does ("1 MiB", "1.5 GiB"). */
export function formatSize(bytes: number): string {
  const names = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let unit = 0;
  let value = bytes;
  while (value >= 1024 && unit < names.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = unit === 0 ? String(value) : value.toFixed(3).replace(/\.?0+$/, '');
  return `${text} ${names[unit]}`;
}
