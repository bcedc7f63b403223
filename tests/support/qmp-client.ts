import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type QmpMessage = Record<string, unknown>;

/** A QMP client that reads CR LF separated messages. */
export class QmpClient {
  private readonly messages: QmpMessage[] = [];
  private buffer = '';
  private waiter: (() => void) | undefined;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffer += text;
      let end: number;
      while ((end = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, end).trim();
        this.buffer = this.buffer.slice(end + 1);
        if (line !== '') this.messages.push(JSON.parse(line) as QmpMessage);
      }
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => {});
  }

  /** Connects, retrying while the VM process starts. */
  static async open(socketPath: string): Promise<QmpClient> {
    for (let attempt = 0; ; attempt++) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const socket = connect(socketPath, () => resolve(socket));
          socket.once('error', reject);
        });
        return new QmpClient(socket);
      } catch (error) {
        if (attempt > 600) throw error;
        await sleep(50);
      }
    }
  }

  async next(): Promise<QmpMessage> {
    for (let waited = 0; this.messages.length === 0; waited++) {
      if (this.closed) throw new Error('the QMP connection closed');
      if (waited > 300) throw new Error('no QMP message within 30 s');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 100);
      });
    }
    return this.messages.shift()!;
  }

  /** Sends raw text; returns the events that came before the answer, and the answer. */
  async request(text: string): Promise<{ events: QmpMessage[]; answer: QmpMessage }> {
    this.socket.write(text);
    const events: QmpMessage[] = [];
    for (;;) {
      const message = await this.next();
      if ('event' in message) events.push(message);
      else return { events, answer: message };
    }
  }

  /** Events that arrived without being asked for. */
  takeEvents(): QmpMessage[] {
    return this.messages.splice(0).filter((message) => 'event' in message);
  }

  async waitClosed(): Promise<void> {
    for (let waited = 0; !this.closed; waited++) {
      if (waited > 300) throw new Error('the QMP connection stayed open');
      await sleep(100);
    }
  }
}

