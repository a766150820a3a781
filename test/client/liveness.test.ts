import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { LockHandle, LockstepClient, WebSocketConstructor } from '../../src/client/index.ts';
import { REFUSED, useServerProxies } from '../helpers/server-proxy.ts';
import { addFns, next, useSdk } from '../helpers/sdk.ts';

/** Resolves once the acquire has queued; the acquire's own promise is returned alongside. */
async function queued(c: LockstepClient, f: number): Promise<{ granted: Promise<LockHandle> }> {
  let isQueued!: () => void;
  const q = new Promise<void>((resolve) => (isQueued = resolve));
  const granted = c.acquire({ functions: [f], mode: 'write', onQueue: () => isQueued() });
  granted.catch(() => undefined);
  await Promise.race([q, granted]);
  return { granted };
}

/** `ws` sockets whose new connections are refused while `shut`, so a reconnect waits for the test. */
function gatedSockets() {
  const gate = { shut: false };
  class Gated extends WebSocket {
    constructor(url: string) {
      super(gate.shut ? REFUSED : url);
    }
  }
  return { WebSocket: Gated as unknown as WebSocketConstructor, gate };
}

/** `ws` sockets whose latest instance the test can look at. */
function trackedSockets() {
  const seen: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string) {
      super(url);
      seen.push(this);
    }
  }
  return { WebSocket: Tracked as unknown as WebSocketConstructor, last: () => seen[seen.length - 1] };
}

describe('SDK liveness and close', () => {
  const t = useSdk();
  const proxy = useServerProxies();

  it('notices a silently dead connection within a few heartbeats, fails a queued acquire with DISCONNECTED and reconnects', async () => {
    const s = await t.server({ heartbeatMs: 100 });
    const p = await proxy(s);
    const holder = await t.client(s, 'holder');
    const a = await t.client(s, 'a', { url: p.url });
    expect(a.hello?.heartbeatMs).toBe(100);
    const [f] = (await addFns(holder, ['f'])) as [number];
    await holder.acquire({ functions: [f], mode: 'write' });
    const { granted: waiting } = await queued(a, f);

    const disconnected = next(a, 'disconnected');
    const connected = next(a, 'connected');
    // Without the keepalive nothing would ever end this wait (the test would time out).
    p.blackhole();
    await expect(waiting).rejects.toMatchObject({ type: 'DISCONNECTED', retryable: true });
    expect((await disconnected)[0].willReconnect).toBe(true);
    await connected;
    expect(a.state).toBe('open');
    expect((await a.session.ping()).time).toEqual(expect.any(String));
  });

  it('gives back, after a resume, a lock whose grant was lost with the old socket', async () => {
    const s = await t.server({ sessionGraceMs: 30_000 });
    const p = await proxy(s);
    const a = await t.client(s, 'a', { url: p.url });
    const b = await t.client(s, 'b');
    const [f, g] = (await addFns(b, ['f', 'g'])) as [number, number];
    const kept = await a.acquire({ functions: [g], mode: 'write' });

    p.mute();
    // The server grants it; the reply never reaches the client.
    const grantedOnServer = new Promise<void>((resolve) =>
      s.inspect().locks.on('granted', (e) => {
        if (e.grants.some((x) => 'function' in x.resource && x.resource.function === f)) resolve();
      }),
    );
    const lost = a.acquire({ functions: [f], mode: 'write', wait: false });
    lost.catch(() => undefined);
    await grantedOnServer;
    const resumed = next(a, 'connected');
    p.dropAll();
    await expect(lost).rejects.toMatchObject({ type: 'DISCONNECTED' });
    await resumed;
    const taken = await b.acquire({ functions: [f], mode: 'write', wait: true, waitTimeoutMs: 5_000 });
    expect(taken.held).toBe(true);
    expect(a.held().map((h) => h.resource)).toEqual([{ program: 'main', function: g }]);
    expect(kept.held).toBe(true);
  });

  it('an abort while reconnecting rejects the acquire at once and never sends it', async () => {
    const s = await t.server();
    const p = await proxy(s);
    const a = await t.client(s, 'a', { url: p.url, reconnect: { initialDelayMs: 300, maxDelayMs: 300, jitter: 0 } });
    const b = await t.client(s, 'b');
    const [f] = (await addFns(b, ['f'])) as [number];
    const reconnecting = next(a, 'disconnected');
    p.dropAll();
    await reconnecting;
    const ac = new AbortController();
    const acquiring = a.acquire({ functions: [f], mode: 'write', signal: ac.signal });
    const connected = next(a, 'connected');
    ac.abort();
    await expect(acquiring).rejects.toMatchObject({ type: 'ABORTED' });
    expect(a.state).toBe('reconnecting');
    await connected;
    expect((await b.lock.status({})).resources).toEqual([]);
  });

  it("withLocks passes fn's error on at once when the connection is gone without resume grace", async () => {
    const s = await t.server();
    const p = await proxy(s);
    const a = await t.client(s, 'a', {
      url: p.url,
      callTimeoutMs: 10_000,
      reconnect: { initialDelayMs: 5_000, maxDelayMs: 5_000, jitter: 0 },
    });
    const b = await t.client(s, 'b');
    const [f] = (await addFns(b, ['f'])) as [number];
    const run = a.withLocks({ functions: [f], mode: 'write' }, async () => {
      const gone = next(a, 'disconnected');
      p.dropAll();
      await gone;
      throw new Error('fn failed');
    });
    await expect(run).rejects.toThrow('fn failed');
    // Answered before the reconnect (5 s away), not after it or a call timeout.
    expect(a.state).toBe('reconnecting');
    expect(a.held()).toEqual([]);
  });

  it('announces a gap in the event stream (resync) before any event that follows it', async () => {
    const s = await t.server({ eventBuffer: 5 });
    const p = await proxy(s);
    const sockets = gatedSockets();
    const a = await t.client(s, 'a', {
      url: p.url,
      WebSocket: sockets.WebSocket,
      reconnect: { initialDelayMs: 20, maxDelayMs: 20, jitter: 0 },
    });
    const b = await t.client(s, 'b');
    const [f] = (await addFns(b, ['f'])) as [number];
    await a.events.subscribe({ topics: ['locks'] });
    const gone = next(a, 'disconnected');
    // Kept away until more events than the buffer holds have happened, however long they take.
    sockets.gate.shut = true;
    p.dropAll();
    await gone;
    const seen: string[] = [];
    a.on('event', (e) => seen.push(`event ${e.seq}`));
    a.on('resync', () => seen.push('resync'));
    for (let i = 0; i < 5; i++) await (await b.acquire({ functions: [f], mode: 'write' })).release();
    const connected = next(a, 'connected');
    sockets.gate.shut = false;
    await connected;
    expect(seen[0]).toBe('resync');
    expect(seen.length).toBeGreaterThan(1);
  });

  it('close() fails in-flight calls with CLOSED and terminates a socket whose close handshake never ends', async () => {
    const s = await t.server();
    const p = await proxy(s);
    const sockets = trackedSockets();
    const a = await t.client(s, 'a', { url: p.url, WebSocket: sockets.WebSocket });
    const ws = sockets.last() as WebSocket;
    const socketClosed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    p.blackhole();
    const ping = a.session.ping();
    ping.catch(() => undefined);
    await a.close();
    await expect(ping).rejects.toMatchObject({ type: 'CLOSED' });
    // Without terminate() the `ws` socket would wait 30 s for the close frame the server never sees.
    await socketClosed;
    expect(ws.readyState).toBe(WebSocket.CLOSED);
    expect(a.state).toBe('closed');
  });

  it("close() while resuming, with the client's own work under way, fails only the application's calls, each with what it waited for", async () => {
    // Vitest fails the run on any unhandled rejection: none may come from the client itself (a
    // renewal, a re-queue, a resend, a give-back), only from calls the application made.
    const s = await t.server({ sessionGraceMs: 60_000 });
    const p = await proxy(s);
    // Two nodes (the other down), so that a drop may be a failover: the waiting acquire is kept to
    // be queued again rather than failed.
    const a = await t.client(s, 'a', { url: undefined, urls: [p.url, REFUSED], connectTimeoutMs: 60_000 });
    const b = await t.client(s, 'b');
    const [f, g, h] = (await addFns(b, ['f', 'g', 'h'])) as [number, number, number];
    const renewed = await a.acquire({ functions: [f], mode: 'write', autoRenew: true, ttlMs: 1_000 });
    await b.acquire({ functions: [h], mode: 'write' });
    const { granted: waiting } = await queued(a, h);
    let editSent!: () => void;
    const sent = new Promise<void>((resolve) => (editSent = resolve));
    const underLock = a.withLocks({ functions: [g], mode: 'write' }, async (lock) => {
      p.mute();
      const edit = a.edit.apply({
        ops: [{ op: 'addNode', function: g, node: { id: 1, op: 'const' } }],
        fences: lock.fences,
      });
      editSent();
      return edit;
    });
    underLock.catch(() => undefined);
    await sent;
    const suspended = next(a, 'suspended');
    p.stall();
    p.dropAll();
    await suspended;
    const release = renewed.release();
    release.catch(() => undefined);
    await a.close();
    await expect(waiting).rejects.toMatchObject({ type: 'CLOSED' });
    await expect(underLock).rejects.toMatchObject({ type: 'DISCONNECTED' });
    await expect(release).rejects.toMatchObject({ type: 'CLOSED' });
    expect(renewed.state).toBe('released');
  });

  it('close() during a reconnect aborts the socket still opening', async () => {
    const s = await t.server();
    const p = await proxy(s);
    const a = await t.client(s, 'a', { url: p.url, connectTimeoutMs: 60_000 });
    p.stall();
    const opening = p.nextConnection();
    p.dropAll();
    const socket = await opening;
    expect(a.state).toBe('reconnecting');
    const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await a.close();
    await gone;
    expect(a.state).toBe('closed');
  });
});
