// A JSON-RPC 2.0 client over one WebSocket that reconnects by itself. It knows nothing of what the
// dashboard shows: `onOpen` runs the session's first calls on every (re)connect.

/** @typedef {'connecting' | 'live' | 'retrying' | 'failed'} ConnState */
/** @typedef {{ code: number, message: string, data?: Record<string, unknown> }} RpcError */

/** Backoff steps in ms; jittered so a restarted server is not hit by every tab at once. */
const BACKOFF = [500, 1000, 2000, 4000, 8000, 15000];

export class RpcFailure extends Error {
  /** @param {RpcError} error */
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.data = error.data;
  }
}

export class Rpc {
  /**
   * @param {string} url
   * @param {{
   *   onOpen: (rpc: Rpc) => Promise<void>,
   *   onNotification: (method: string, params: any) => void,
   *   onState: (state: ConnState, detail: string) => void,
   * }} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    /** @type {WebSocket | undefined} */
    this.ws = undefined;
    this.nextId = 1;
    /** @type {Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>} */
    this.pending = new Map();
    this.attempt = 0;
    /** Why the last session setup failed, shown until a connect succeeds. */
    this.failure = '';
  }

  start() {
    this.handlers.onState('connecting', this.url);
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.handlers.onOpen(this).then(
        () => {
          this.attempt = 0;
          this.failure = '';
          this.handlers.onState('live', '');
        },
        (err) => {
          // Closed meanwhile: closed() has already scheduled the retry.
          if (ws.readyState !== WebSocket.OPEN) return;
          this.failure = err instanceof Error ? err.message : String(err);
          this.handlers.onState('failed', this.failure);
          ws.close(1000, 'session setup failed');
        },
      );
    };
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = (e) => this.closed(e.code, e.reason);
  }

  /**
   * @param {string} method
   * @param {Record<string, unknown>} [params]
   * @returns {Promise<any>}
   */
  call(method, params) {
    const ws = this.ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('not connected'));
    const id = this.nextId++;
    ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** @param {unknown} data */
  receive(data) {
    if (typeof data !== 'string') return;
    const frame = JSON.parse(data);
    if (frame.id === undefined || frame.id === null) {
      if (typeof frame.method === 'string') this.handlers.onNotification(frame.method, frame.params);
      return;
    }
    const waiter = this.pending.get(frame.id);
    if (waiter === undefined) return;
    this.pending.delete(frame.id);
    if (frame.error !== undefined) waiter.reject(new RpcFailure(frame.error));
    else waiter.resolve(frame.result);
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  closed(code, reason) {
    for (const w of this.pending.values()) w.reject(new Error('connection closed'));
    this.pending.clear();
    const base = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)] ?? 15000;
    this.attempt++;
    const delay = Math.round(base * (1 + Math.random() * 0.2));
    const why = this.failure !== '' ? this.failure : reason === '' ? `closed (${code})` : `${reason} (${code})`;
    this.handlers.onState('retrying', `${why}; retrying in ${Math.ceil(delay / 1000)} s`);
    setTimeout(() => this.start(), delay);
  }
}
