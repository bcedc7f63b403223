import { TsvirtError } from '@tsvirt/interfaces';

/** A kernel, initrd or command line that cannot be booted; the message names the problem. */
export class BootError extends TsvirtError {
  constructor(message: string) {
    super('BOOT_INVALID', message);
  }
}
