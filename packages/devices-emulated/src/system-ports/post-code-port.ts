import { ignoreEvents, StateReader, type AccessSize, type BusDevice, type Observer, type Stateful } from '@tsvirt/interfaces';

/** The POST diagnostic port; Linux also writes it as an I/O delay. */
export const POST_CODE_PORT_BASE = 0x80;
export const POST_CODE_PORT_LENGTH = 1;

export interface PostCodeEvent {
  kind: 'post-code';
  code: number;
}

export interface PostCodePortState {
  version: 1;
  lastCode: number;
}

/**
 * A sink for port 0x80 writes: remembers the last code and reports each to the
 * observer. Reads return all-ones as on QEMU (no POST card fitted).
 */
export class PostCodePort implements BusDevice, Stateful<PostCodePortState> {
  private code = 0;
  private readonly observer: Observer<PostCodeEvent>;

  constructor(options: { observer?: Observer<PostCodeEvent> } = {}) {
    this.observer = options.observer ?? ignoreEvents;
  }

  /** The last byte written. */
  get lastCode(): number {
    return this.code;
  }

  read(_offset: number, size: AccessSize): number {
    return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
  }

  write(_offset: number, _size: AccessSize, value: number): void {
    this.code = value & 0xff;
    this.observer({ kind: 'post-code', code: this.code });
  }

  save(): PostCodePortState {
    return { version: 1, lastCode: this.code };
  }

  restore(state: unknown): void {
    const reader = StateReader.open(state, 'postCode', 1);
    this.code = reader.uint('lastCode', 0xff);
  }
}
