/** Plain data that survives `JSON.stringify` / `JSON.parse` unchanged. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * The saved state of one component: JSON-compatible, with a version so a
 * newer tsvirt can read (or clearly refuse) an older state.
 */
export interface SavedState {
  readonly version: number;
}

/**
 * A component whose state can be saved and restored (snapshots, migration).
 * `restore` treats `state` as untrusted input: it validates every field and
 * throws {@link StateError} naming the first bad one, leaving the component
 * as it was. Restoring what `save` returned and continuing behaves exactly
 * like continuing without the round trip. A machine's state is a tree of
 * these, keyed by component id.
 */
export interface Stateful<State extends SavedState = SavedState> {
  save(): State;
  restore(state: unknown): void;
}
