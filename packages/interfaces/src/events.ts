/**
 * The observer convention: a component that reports events takes an
 * `Observer` in its options and defaults to {@link ignoreEvents}. There are no
 * global metrics or loggers; whoever builds the component decides where its
 * events go.
 *
 * @example
 * ```ts
 * const seen: string[] = [];
 * const observer: Observer<{ kind: string }> = (event) => seen.push(event.kind);
 * observer({ kind: 'reset' });
 * ignoreEvents({ kind: 'dropped' });
 * assert.deepEqual(seen, ['reset']);
 * ```
 */
export type Observer<Event> = (event: Event) => void;

/** The default observer: drops every event. */
export const ignoreEvents: Observer<unknown> = () => {};
