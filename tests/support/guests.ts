import { buildGuest, existingGuest, type GuestArch, type GuestManifest } from '../../scripts/guests/build.js';

/**
 * The guest kit's images for `arch`, or `undefined` so the caller can skip
 * with a hint. CI never skips: vitest's global setup builds them there first.
 */
export function debianGuest(arch: GuestArch): GuestManifest | undefined {
  return existingGuest(arch);
}

/** In CI, builds the guests that are missing, one after the other (apt and dpkg take locks). */
export function provisionGuestsForCi(): void {
  if (!process.env.CI) return;
  for (const arch of ['amd64', 'i386'] as const) {
    if (existingGuest(arch) !== undefined) continue;
    const manifest = buildGuest(arch);
    console.log(`guest kit: built ${arch} (${manifest.kernelPackage}) for the boot tests`);
  }
}
