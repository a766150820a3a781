import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

export interface Reply {
  id: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
}

/**
 * A bare JSON-RPC client on one `ws` socket, used both for Lockstep and for the echo floor, so the
 * client's own cost is the same on both sides of the comparison. Replies and pushes are handled
 * synchronously in the message event: ws emits every frame of a TCP chunk in one go, so a
 * `lock.granted` may follow a `queued` result before any promise continuation could run.
 */
export class RpcSocket {
  private nextId = 1;
  private readonly pending = new Map<number, (reply: Reply, at: number) => void>();
  private readonly tickets = new Map<string, (at: number) => void>();
  private readonly earlyGrants = new Map<string, number>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const at = performance.now();
      const msg = JSON.parse(String(data)) as Reply & { method?: string; params?: { ticket?: string } };
      if (msg.method === undefined) {
        const done = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        done?.(msg, at);
      } else if (msg.method === 'lock.granted' && msg.params?.ticket !== undefined) {
        const waiter = this.tickets.get(msg.params.ticket);
        if (waiter === undefined) this.earlyGrants.set(msg.params.ticket, at);
        else {
          this.tickets.delete(msg.params.ticket);
          waiter(at);
        }
      }
    });
  }

  static open(url: string): Promise<RpcSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.once('open', () => resolve(new RpcSocket(ws)));
      ws.once('error', reject);
    });
  }

  /** Sends one request; `onReply` runs in the message event with the arrival time. */
  send(method: string, params: unknown, onReply: (reply: Reply, at: number) => void): void {
    const id = this.nextId++;
    this.pending.set(id, onReply);
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
  }

  /** Resolves with the reply's arrival time; an error reply rejects. */
  call(method: string, params?: unknown): Promise<{ result: Record<string, unknown>; at: number }> {
    return new Promise((resolve, reject) => {
      this.send(method, params, (reply, at) => {
        if (reply.error !== undefined) reject(new Error(`${method}: ${JSON.stringify(reply.error)}`));
        else resolve({ result: reply.result ?? {}, at });
      });
    });
  }

  /** Calls `granted` with the arrival time of the ticket's `lock.granted`, even if it came already. */
  onGranted(ticket: string, granted: (at: number) => void): void {
    const at = this.earlyGrants.get(ticket);
    if (at === undefined) this.tickets.set(ticket, granted);
    else {
      this.earlyGrants.delete(ticket);
      granted(at);
    }
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}
