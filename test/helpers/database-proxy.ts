import { createServer, type Server, Socket } from 'node:net';
import { afterEach } from 'vitest';

// A TCP proxy in front of PostgreSQL for one cluster node, so that a test can cut that node (and
// only it) from the database: refuse and reset its connections, drop its bytes silently, slow
// them down, or let its requests through while holding the answers back.

export type ProxyMode =
  | { kind: 'pass' }
  /** Every connection destroyed (RST), new ones reset at once. */
  | { kind: 'reset' }
  /** Connections accepted and kept, every byte both ways dropped: a silent partition. */
  | { kind: 'blackhole' }
  /** Each chunk delayed by this many ms, in order, per direction. */
  | { kind: 'latency'; upMs: number; downMs: number }
  /** Bytes to the database are held back, never delivered: the node's writes do not arrive. */
  | { kind: 'holdUp' };

interface Pipe {
  client: Socket;
  server: Socket;
  /** What the node sent since its last BEGIN, to recognise the transaction a COMMIT ends. */
  sinceBegin: string;
  /** A held COMMIT and what the node sent after it on this connection (holdCommitOf). */
  heldUp: Buffer[] | undefined;
  /** Delayed chunks still to write per direction: later chunks queue behind them, in order. */
  delayed: { up: Delayed; down: Delayed };
}

interface Delayed {
  pending: number;
  tail: Promise<void>;
}

export interface DatabaseProxy {
  /** postgres://… through the proxy, for the node's --db. */
  readonly url: string;
  mode(next: ProxyMode): void;
  /**
   * From the first COMMIT of a transaction whose statements contain `marker`, every answer from the
   * database to the node is held: the commit happens, its reply (and every later one) never comes.
   * Resolves when that COMMIT has gone through.
   */
  holdRepliesAfterCommitOf(marker: string): Promise<void>;
  /**
   * The COMMIT of the next transaction whose statements contain `marker` is held back, with what
   * its connection sends after it, until `release()`: a commit as slow as the test wants, the
   * others unhindered. `arrived` resolves once it is held.
   */
  holdCommitOf(marker: string): { arrived: Promise<void>; release(): void };
  close(): Promise<void>;
}

/** A proxy to the database at `target` (a postgres:// URL); its URL is `target` with the proxy's port. */
export async function startDatabaseProxy(target: string): Promise<DatabaseProxy> {
  const upstream = new URL(target);
  const pipes = new Set<Pipe>();
  let mode: ProxyMode = { kind: 'pass' };
  let holdingReplies = false;
  let armed: { marker: string; fire: () => void } | undefined;
  let commitHold: { marker: string; fire: () => void } | undefined;

  const forward = (pipe: Pipe, dir: 'up' | 'down', chunk: Buffer) => {
    const to = dir === 'up' ? pipe.server : pipe.client;
    if (dir === 'up') {
      const text = chunk.toString('latin1');
      const begin = text.lastIndexOf('BEGIN');
      pipe.sinceBegin = begin >= 0 ? text.slice(begin) : pipe.sinceBegin + text;
      if (armed !== undefined && text.includes('COMMIT') && pipe.sinceBegin.includes(armed.marker)) {
        holdingReplies = true;
        armed.fire();
        armed = undefined;
      }
      if (commitHold !== undefined && text.includes('COMMIT') && pipe.sinceBegin.includes(commitHold.marker)) {
        pipe.heldUp = [];
        commitHold.fire();
        commitHold = undefined;
      }
      if (pipe.heldUp !== undefined) {
        pipe.heldUp.push(chunk);
        return;
      }
    }
    if (mode.kind === 'blackhole') return;
    // Held bytes are never delivered: the connection is destroyed when the hold ends.
    if ((dir === 'down' && holdingReplies) || (dir === 'up' && mode.kind === 'holdUp')) return;
    const ms = mode.kind === 'latency' ? (dir === 'up' ? mode.upMs : mode.downMs) : 0;
    const queue = pipe.delayed[dir];
    if (ms === 0 && queue.pending === 0) {
      to.write(chunk);
      return;
    }
    const due = Date.now() + ms;
    queue.pending++;
    queue.tail = queue.tail
      .then(() => new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now()))))
      .then(() => {
        queue.pending--;
        if (!to.destroyed) to.write(chunk);
      });
  };

  const server: Server = createServer((client) => {
    if (mode.kind === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const pipe: Pipe = {
      client,
      server: new Socket(),
      sinceBegin: '',
      heldUp: undefined,
      delayed: { up: { pending: 0, tail: Promise.resolve() }, down: { pending: 0, tail: Promise.resolve() } },
    };
    pipes.add(pipe);
    const end = () => {
      pipes.delete(pipe);
      pipe.client.destroy();
      pipe.server.destroy();
    };
    pipe.server.connect(Number(upstream.port), upstream.hostname);
    client.on('data', (chunk) => forward(pipe, 'up', chunk));
    pipe.server.on('data', (chunk) => forward(pipe, 'down', chunk));
    for (const s of [client, pipe.server]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String(typeof address === 'object' && address !== null ? address.port : 0);

  return {
    url: url.toString(),
    mode(next) {
      const before = mode;
      mode = next;
      if (next.kind === 'reset' || before.kind === 'blackhole' || before.kind === 'holdUp' || holdingReplies) {
        // A connection that lost bytes is broken for good: the node must notice and reconnect.
        for (const pipe of pipes) {
          pipe.client.resetAndDestroy();
          pipe.server.destroy();
        }
        pipes.clear();
      }
      if (next.kind === 'pass') {
        holdingReplies = false;
        armed = undefined;
      }
    },
    holdRepliesAfterCommitOf(marker) {
      return new Promise((fire) => {
        armed = { marker, fire };
      });
    },
    holdCommitOf(marker) {
      const arrived = new Promise<void>((fire) => {
        commitHold = { marker, fire };
      });
      const release = () => {
        for (const pipe of pipes) {
          const held = pipe.heldUp;
          pipe.heldUp = undefined;
          for (const chunk of held ?? []) forward(pipe, 'up', chunk);
        }
      };
      return { arrived, release };
    },
    async close() {
      for (const pipe of pipes) {
        pipe.client.destroy();
        pipe.server.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A round trip of 40 ms on every statement: a journal commit (a transaction of a few statements)
 * takes a few hundred, long after a reply that did not wait for it, yet well inside a lease.
 */
export const SLOW_STATEMENTS: ProxyMode = { kind: 'latency', upMs: 20, downMs: 20 };

/** startDatabaseProxy for a test file: every proxy a test starts is closed after it. */
export function useDatabaseProxies(): (target: string) => Promise<DatabaseProxy> {
  const proxies: DatabaseProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });
  return async (target) => {
    const proxy = await startDatabaseProxy(target);
    proxies.push(proxy);
    return proxy;
  };
}
