import { WebSocket } from 'ws';
import { Random } from '../../src/cli/random.ts';

// Clients for the fault tests. Unlike TestClient, every wait here ends when the socket dies: a
// call whose reply never came is recorded as `unknown` (it may or may not have taken effect),
// which is exactly what a real agent knows after a connection loss.

export type Outcome =
  | { kind: 'ok'; result: any }
  | { kind: 'error'; type: string; code: number; data: Record<string, unknown> | undefined }
  | { kind: 'unknown' };

export interface Note {
  method: string;
  params: any;
}

export interface EventItem {
  seq: number;
  time: string;
  topic: 'agents' | 'locks' | 'edits';
  type: string;
  data: any;
}

interface Frame {
  id?: number | string | null;
  method?: string;
  params?: any;
  result?: any;
  error?: { code: number; message: string; data?: Record<string, unknown> & { type?: string } };
}

/** The demo's seeded generator (src/cli/random.ts) as a function: a fault schedule replays from its seed. */
export function seededRandom(seed: number): () => number {
  const random = new Random(seed);
  return () => random.next();
}

export class FaultClient {
  sessionId = '';
  readonly closed: Promise<void>;
  isClosed = false;
  private nextId = 1;
  private readonly replies = new Map<number, (o: Outcome) => void>();
  private readonly notes: Note[] = [];
  private readonly noteWaiters: Array<{ match: (n: Note) => boolean; resolve: (n: Note | undefined) => void }> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.onFrame(JSON.parse(data.toString()) as Frame));
    // A terminated socket may also report an error; the close that follows is what counts.
    ws.on('error', () => {});
    this.closed = new Promise((resolve) =>
      ws.once('close', () => {
        this.isClosed = true;
        for (const settle of this.replies.values()) settle({ kind: 'unknown' });
        this.replies.clear();
        for (const w of this.noteWaiters.splice(0)) w.resolve(undefined);
        resolve();
      }),
    );
  }

  /**
   * Connects and says hello. A cluster node that does not lead yet (a restarted node waits out the
   * killed one's lease) answers NOT_LEADER and closes: the hello is tried again after the
   * retryAfterMs it gives, as the SDK does, for at most `withinMs`.
   */
  static async open(
    url: string,
    name: string,
    role: 'agent' | 'observer' = 'agent',
    withinMs = 15_000,
  ): Promise<FaultClient> {
    const end = Date.now() + withinMs;
    for (;;) {
      const attempt = await FaultClient.hello(url, name, role);
      if (attempt instanceof FaultClient) return attempt;
      if (Date.now() > end) throw new Error(`hello failed: ${JSON.stringify(attempt)}`);
      await new Promise((resolve) => setTimeout(resolve, Number(attempt.data?.retryAfterMs ?? 100)));
    }
  }

  /** One hello: the client, or the NOT_LEADER answer to try again after. */
  private static async hello(
    url: string,
    name: string,
    role: 'agent' | 'observer',
  ): Promise<FaultClient | Extract<Outcome, { kind: 'error' }>> {
    const ws = new WebSocket(url);
    const client = new FaultClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', () => reject(new Error(`could not connect to ${url}`)));
    });
    const hello = await client.call('session.hello', { protocol: 1, name, role });
    if (hello.kind === 'error' && hello.type === 'NOT_LEADER') return hello;
    if (hello.kind !== 'ok') throw new Error(`hello failed: ${JSON.stringify(hello)}`);
    client.sessionId = hello.result.sessionId;
    return client;
  }

  call(method: string, params?: unknown): Promise<Outcome> {
    if (this.isClosed) return Promise.resolve({ kind: 'unknown' });
    const id = this.nextId++;
    const reply = new Promise<Outcome>((resolve) => this.replies.set(id, resolve));
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
    return reply;
  }

  /** The first notification matching, received already or still to come; undefined if the socket dies first. */
  next(match: (n: Note) => boolean): Promise<Note | undefined> {
    const i = this.notes.findIndex(match);
    if (i >= 0) return Promise.resolve(this.notes.splice(i, 1)[0]);
    if (this.isClosed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.noteWaiters.push({ match, resolve }));
  }

  /** A client-side kill: the TCP connection is dropped without a close handshake. */
  terminate(): Promise<void> {
    this.ws.terminate();
    return this.closed;
  }

  /** The process stops reading its socket (a GC pause, a stopped VM): no replies, no pongs. */
  pause(): void {
    this.socket().pause();
  }

  resume(): void {
    this.socket().resume();
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.ws.close();
    await this.closed;
  }

  private socket(): { pause(): void; resume(): void } {
    return (this.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  }

  private onFrame(frame: Frame): void {
    if (frame.method === undefined && typeof frame.id === 'number') {
      const settle = this.replies.get(frame.id);
      this.replies.delete(frame.id);
      if (settle === undefined) return;
      if (frame.error === undefined) settle({ kind: 'ok', result: frame.result });
      else
        settle({
          kind: 'error',
          type: frame.error.data?.type ?? String(frame.error.code),
          code: frame.error.code,
          data: frame.error.data,
        });
      return;
    }
    if (frame.method === undefined) return;
    const note: Note = { method: frame.method, params: frame.params };
    const i = this.noteWaiters.findIndex((w) => w.match(note));
    if (i >= 0) this.noteWaiters.splice(i, 1)[0]!.resolve(note);
    else this.notes.push(note);
  }
}

/**
 * An observer following the sequenced event stream from its very first event. Should its own
 * socket drop, it resubscribes from the last sequence number it saw, so the record it keeps is
 * the whole stream or the test learns that it is not (`truncated`).
 */
export class EventObserver {
  readonly events: EventItem[] = [];
  reconnects = 0;
  truncated = false;
  private client: FaultClient | undefined;
  private stopped = false;
  private readonly waiters: Array<{ match: (e: EventItem) => boolean; resolve: (e: EventItem) => void }> = [];
  private following: Promise<void> = Promise.resolve();

  constructor(
    private readonly url: string,
    private readonly topics: ReadonlyArray<EventItem['topic']>,
  ) {}

  async start(): Promise<void> {
    await this.subscribe(0);
  }

  /** The first event matching, seen already or still to come. */
  waitFor(match: (e: EventItem) => boolean): Promise<EventItem> {
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.close();
    await this.following;
  }

  private async subscribe(since: number): Promise<void> {
    const client = await FaultClient.open(this.url, 'observer', 'observer');
    this.client = client;
    // Replayed items arrive before the subscribe result, so the listener goes on first.
    client.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      if (frame.method === 'event') this.onEvent(frame.params as EventItem);
    });
    const r = await client.call('events.subscribe', { topics: this.topics, since });
    if (r.kind !== 'ok') throw new Error(`events.subscribe failed: ${JSON.stringify(r)}`);
    if (r.result.truncated === true) this.truncated = true;
    this.following = client.closed.then(async () => {
      if (this.stopped) return;
      this.reconnects++;
      await this.subscribe(this.events.at(-1)?.seq ?? 0);
    });
  }

  private onEvent(item: EventItem): void {
    this.events.push(item);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.match(item)) {
        this.waiters.splice(i, 1);
        w.resolve(item);
      }
    }
  }
}
