import { MemoryCharacterBackend } from '@tsvirt/interfaces';

/**
 * An in-memory character back end for tests and embedding: `send` queues
 * host input (handed over as the device makes room), guest output
 * accumulates until taken (`take`, `takeText`). It is `@tsvirt/interfaces`'
 * `MemoryCharacterBackend`, under the name the other back ends here share.
 *
 * @example
 * ```ts
 * const pipe = new PipeBackend();
 * const com1 = new Uart({ clock, irq, backend: pipe });
 * pipe.send('root\n');
 * // … the guest runs …
 * console.log(pipe.takeText());
 * ```
 */
export class PipeBackend extends MemoryCharacterBackend {}
