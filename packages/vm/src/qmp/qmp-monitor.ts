import { DEFAULT_JSON_STREAM_LIMITS, JsonStreamParser, type JsonStreamItem, type JsonStreamLimits } from './json-stream.js';

/** QMP's error classes (qapi/error.json). */
export type QmpErrorClass = 'GenericError' | 'CommandNotFound' | 'DeviceNotActive' | 'DeviceNotFound' | 'KVMMissingCap';

/** A command's failure, answered as `{"error": {"class", "desc"}}`. */
export class QmpError extends Error {
  constructor(
    readonly errorClass: QmpErrorClass,
    message: string,
  ) {
    super(message);
  }
}

/** An argument's QAPI type: the scalars, or an array of strings from an enumeration. */
export type QmpArgumentType =
  | { readonly type: 'str' | 'int' | 'bool' | 'number' }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  | { readonly type: 'enum-list'; readonly values: readonly string[] };

export interface QmpArgument {
  readonly name: string;
  readonly type: QmpArgumentType;
  readonly optional?: boolean;
}

export interface QmpCommand {
  readonly arguments?: readonly QmpArgument[];
  /** Runs the command and returns its `return` value (an object unless the schema says otherwise); throws a QmpError to fail. */
  run(args: Readonly<Record<string, unknown>>, session: QmpSession): unknown;
}

/** QEMU's `{"qemu": {"major", "minor", "micro"}, "package"}` (query-version, the greeting). */
export interface QmpVersion {
  readonly qemu: { readonly major: number; readonly minor: number; readonly micro: number };
  readonly package: string;
}

/** Where a session's output goes: one text per message, each ending in CR LF as QEMU's; `close` ends the connection. */
export interface QmpSink {
  send(text: string): void;
  close(): void;
}

export interface QmpMonitorOptions {
  readonly version: QmpVersion;
  /** The commands after the built-in `qmp_capabilities` and `query-commands`. */
  readonly commands: ReadonlyMap<string, QmpCommand>;
  /** Wall-clock time in ms since the epoch, for event timestamps (injectable for tests). */
  readonly now?: () => number;
  readonly limits?: JsonStreamLimits;
}

const CAPABILITIES = ['oob'] as const;

/**
 * The QEMU Machine Protocol as QEMU 7.2 speaks it, independent of any
 * transport: each connection is a {@link QmpSession} that starts with the
 * greeting, accepts only `qmp_capabilities` until it has negotiated, then
 * runs commands and receives events. Requests are checked as QEMU's
 * dispatcher checks them, with the same error classes and messages.
 */
export class QmpMonitor {
  private readonly sessions = new Set<QmpSession>();
  private readonly commands: ReadonlyMap<string, QmpCommand>;
  readonly version: QmpVersion;
  private readonly now: () => number;
  private readonly limits: JsonStreamLimits;

  constructor(options: QmpMonitorOptions) {
    this.version = options.version;
    this.now = options.now ?? Date.now;
    this.limits = options.limits ?? DEFAULT_JSON_STREAM_LIMITS;
    const builtIn = new Map<string, QmpCommand>([
      ['qmp_capabilities', { arguments: [{ name: 'enable', type: { type: 'enum-list', values: CAPABILITIES }, optional: true }], run: () => ({}) }],
      ['query-commands', { run: () => [...this.commands.keys()].map((name) => ({ name })) }],
    ]);
    for (const [name, command] of options.commands) {
      if (builtIn.has(name)) throw new Error(`QMP command ${name} is built in`);
      builtIn.set(name, command);
    }
    this.commands = builtIn;
  }

  /** A new connection: sends the greeting. */
  connect(sink: QmpSink): QmpSession {
    const session = new QmpSession(this, sink, this.limits);
    this.sessions.add(session);
    session.sendMessage({ QMP: { version: this.version, capabilities: [...CAPABILITIES] } });
    return session;
  }

  /** Sends an event to every session past capabilities negotiation, as QEMU does. */
  emit(event: string, data?: Readonly<Record<string, unknown>>): void {
    const ms = this.now();
    const seconds = Math.floor(ms / 1000);
    const message: Record<string, unknown> = { timestamp: { seconds, microseconds: Math.floor((ms - seconds * 1000) * 1000) }, event };
    if (data !== undefined) message.data = data;
    for (const session of this.sessions) if (session.negotiated) session.sendMessage(message);
  }

  /** Closes every session (the process is going away). */
  closeAll(): void {
    for (const session of [...this.sessions]) session.close();
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** @internal */
  forget(session: QmpSession): void {
    this.sessions.delete(session);
  }

  /** @internal */
  command(name: string): QmpCommand | undefined {
    return this.commands.get(name);
  }
}

/** One client connection's state: its capabilities negotiation and its JSON stream. */
export class QmpSession {
  negotiated = false;
  oob = false;
  private open = true;
  private readonly parser: JsonStreamParser;

  constructor(
    private readonly monitor: QmpMonitor,
    private readonly sink: QmpSink,
    limits: JsonStreamLimits,
  ) {
    this.parser = new JsonStreamParser((item) => this.handle(item), limits);
  }

  /** Bytes from the client. */
  receive(bytes: Uint8Array): void {
    if (this.open) this.parser.push(bytes);
  }

  /** The connection ended (from either side). */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.monitor.forget(this);
    this.sink.close();
  }

  /** @internal */
  sendMessage(message: unknown): void {
    if (this.open) this.sink.send(`${formatQmpJson(message)}\r\n`);
  }

  private handle(item: JsonStreamItem): void {
    if (item.kind === 'error') {
      this.sendError(undefined, 'GenericError', item.reason.startsWith('JSON ') ? item.reason : `JSON parse error, ${item.reason}`);
      return;
    }
    const request = item.value;
    if (typeof request !== 'object' || request === null || Array.isArray(request)) {
      this.sendError(undefined, 'GenericError', 'QMP input must be a JSON object');
      return;
    }
    const fields = request as Record<string, unknown>;
    const id = Object.hasOwn(fields, 'id') ? { id: fields.id } : undefined;
    try {
      const result = this.dispatch(fields);
      this.sendMessage(id === undefined ? { return: result } : { return: result, ...id });
    } catch (error) {
      if (error instanceof QmpError) this.sendError(id, error.errorClass, error.message);
      else this.sendError(id, 'GenericError', error instanceof Error ? error.message : String(error));
    }
  }

  private sendError(id: { id: unknown } | undefined, errorClass: QmpErrorClass, desc: string): void {
    const error = { error: { class: errorClass, desc } };
    this.sendMessage(id === undefined ? error : { ...id, ...error });
  }

  private dispatch(fields: Record<string, unknown>): unknown {
    let name: string | undefined;
    let outOfBand = false;
    for (const [key, value] of Object.entries(fields)) {
      if (key === 'execute' || (key === 'exec-oob' && this.oob)) {
        if (typeof value !== 'string') throw new QmpError('GenericError', `QMP input member '${key}' must be a string`);
        if (name !== undefined) throw new QmpError('GenericError', "QMP input must not contain both 'execute' and 'exec-oob'");
        name = value;
        outOfBand = key === 'exec-oob';
      } else if (key === 'arguments') {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new QmpError('GenericError', "QMP input member 'arguments' must be an object");
      } else if (key !== 'id') throw new QmpError('GenericError', `QMP input member '${key}' is unexpected`);
    }
    if (name === undefined) throw new QmpError('GenericError', "QMP input lacks member 'execute'");
    const command = this.monitor.command(name);
    if (!this.negotiated && name !== 'qmp_capabilities') throw new QmpError('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
    if (this.negotiated && name === 'qmp_capabilities') throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
    if (command === undefined) throw new QmpError('CommandNotFound', `The command ${name} has not been found`);
    if (outOfBand) throw new QmpError('GenericError', `The command ${name} does not support OOB`);
    const args = checkArguments(command.arguments ?? [], (fields.arguments ?? {}) as Record<string, unknown>);
    const result = command.run(args, this);
    if (name === 'qmp_capabilities') {
      this.negotiated = true;
      this.oob = (args.enable as string[] | undefined)?.includes('oob') ?? false;
    }
    return result;
  }
}

/** QAPI's input visitor: unknown members, missing ones and wrong types get QEMU's messages. */
function checkArguments(specs: readonly QmpArgument[], given: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(given)) {
    if (!specs.some((spec) => spec.name === key)) throw new QmpError('GenericError', `Parameter '${key}' is unexpected`);
  }
  const args: Record<string, unknown> = {};
  for (const spec of specs) {
    const value = given[spec.name];
    if (value === undefined) {
      if (spec.optional !== true) throw new QmpError('GenericError', `Parameter '${spec.name}' is missing`);
      continue;
    }
    args[spec.name] = checkValue(spec.name, spec.type, value);
  }
  return args;
}

function checkValue(name: string, type: QmpArgumentType, value: unknown): unknown {
  const wrong = (expected: string) => new QmpError('GenericError', `Invalid parameter type for '${name}', expected: ${expected}`);
  switch (type.type) {
    case 'str':
      if (typeof value !== 'string') throw wrong('string');
      return value;
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw wrong('integer');
      return value;
    case 'number':
      if (typeof value !== 'number') throw wrong('number');
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw wrong('boolean');
      return value;
    case 'enum':
      if (typeof value !== 'string') throw wrong('string');
      if (!type.values.includes(value)) throw new QmpError('GenericError', `Parameter '${name}' does not accept value '${value}'`);
      return value;
    case 'enum-list':
      if (!Array.isArray(value)) throw wrong('array');
      return value.map((element, index) => checkValue(`${name}[${index}]`, { type: 'enum', values: type.values }, element));
  }
}

/**
 * JSON as QEMU's QMP writes it: `", "` and `": "` between members, and every
 * character outside printable ASCII escaped, so the stream is plain ASCII.
 */
export function formatQmpJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return `[${value.map(formatQmpJson).join(', ')}]`;
  if (typeof value === 'object') {
    const members = Object.entries(value).filter(([, member]) => member !== undefined);
    return `{${members.map(([key, member]) => `${formatQmpJson(key)}: ${formatQmpJson(member)}`).join(', ')}}`;
  }
  return 'null';
}
