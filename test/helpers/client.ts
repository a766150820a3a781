import { WebSocket } from 'ws';

// A deliberately raw protocol client for tests: it speaks frames, not the SDK, so the tests pin
// the wire format itself. Waiting is always on a message, never on a timer.

export interface RpcFailure {
  code: number;
  message: string;
  data?: Record<string, unknown> & { type?: string; retryable?: boolean; retryAfterMs?: number };
}

export class RpcCallError extends Error {
  constructor(readonly error: RpcFailure) {
    super(`${error.code} ${error.data?.type ?? ''} ${error.message}`);
  }
  get type(): string | undefined {
    return this.error.data?.type;
  }
}

interface Frame {
  jsonrpc: '2.0';
  id?: string | number | null;
  method?: string;
  params?: any;
  result?: any;
  error?: RpcFailure;
}

type Waiter = { match: (f: Frame) => boolean; resolve: (f: Frame) => void };

export class TestClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextId = 1;
  private readonly waiters: Waiter[] = [];
  sessionId = '';

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const frame = JSON.parse(isBinary ? '{}' : data.toString()) as Frame;
      const i = this.waiters.findIndex((w) => w.match(frame));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(frame);
      else this.frames.push(frame);
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  static connect(url: string, headers?: Record<string, string>): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, headers === undefined ? {} : { headers });
      const client = new TestClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  /** Connects and says hello; resolves with the hello result. */
  static async open(url: string, name: string, role: 'agent' | 'observer' = 'agent'): Promise<TestClient> {
    const c = await TestClient.connect(url);
    const r = await c.call('session.hello', { protocol: 1, name, role });
    c.sessionId = r.sessionId;
    return c;
  }

  /** The whole response frame for a request. */
  async request(method: string, params?: unknown): Promise<Frame> {
    const id = this.nextId++;
    const reply = this.take((f) => f.id === id && f.method === undefined);
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
    return reply;
  }

  async call(method: string, params?: unknown): Promise<any> {
    const f = await this.request(method, params);
    if (f.error !== undefined) throw new RpcCallError(f.error);
    return f.result;
  }

  /** Resolves with the error of a call that must fail. */
  async fail(method: string, params?: unknown): Promise<RpcFailure> {
    const f = await this.request(method, params);
    if (f.error === undefined)
      throw new Error(`${method} succeeded but should have failed: ${JSON.stringify(f.result)}`);
    return f.error;
  }

  /** The next notification of this method (already received or still to come). */
  async notification(method: string, match: (params: any) => boolean = () => true): Promise<any> {
    return (await this.take((f) => f.method === method && f.id === undefined && match(f.params))).params;
  }

  /** Notifications of this method received so far and not yet taken. */
  pending(method: string): any[] {
    return this.frames.filter((f) => f.method === method && f.id === undefined).map((f) => f.params);
  }

  /** Any frame matching, e.g. an error answer with id null. */
  take(match: (f: Frame) => boolean): Promise<Frame> {
    const i = this.frames.findIndex(match);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]!);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  send(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}
