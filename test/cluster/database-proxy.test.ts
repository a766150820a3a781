import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startDatabaseProxy, type DatabaseProxy } from '../helpers/database-proxy.ts';

// The proxy the cluster workload cuts a leader from PostgreSQL with, against an echo server: each
// mode does to the bytes what the workload's faults rely on.

/** Long enough that an echo on this machine would have come back: what "nothing came" waits. */
const SILENCE_MS = 300;

let echo: Server | undefined;
/** Everything the echo server was sent. */
let arrived = '';
let proxy: DatabaseProxy | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await proxy?.close();
  await new Promise((resolve) => (echo === undefined ? resolve(undefined) : echo.close(resolve)));
});

async function setup(): Promise<DatabaseProxy> {
  arrived = '';
  echo = createServer((s) => {
    s.on('data', (chunk) => {
      arrived += chunk.toString('latin1');
    });
    s.pipe(s);
  });
  await new Promise<void>((resolve) => echo!.listen(0, '127.0.0.1', resolve));
  const port = (echo.address() as { port: number }).port;
  proxy = await startDatabaseProxy(`postgres://u@127.0.0.1:${port}/db`);
  return proxy;
}

/** A client of the proxy that collects what comes back. */
async function open(p: DatabaseProxy): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const url = new URL(p.url);
  const socket = createConnection(Number(url.port), url.hostname);
  sockets.push(socket);
  let data = '';
  socket.on('data', (chunk) => {
    data += chunk.toString('latin1');
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // A reset connection may close before it is seen open.
  await Promise.race([new Promise<void>((resolve) => socket.once('connect', () => resolve())), closed]);
  return { socket, received: () => data, closed };
}

async function echoed(c: { received: () => string }, text: string, withinMs = 5_000): Promise<number> {
  const start = Date.now();
  while (!c.received().includes(text)) {
    if (Date.now() - start > withinMs) throw new Error(`no echo of ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return Date.now() - start;
}

const silence = () => new Promise((resolve) => setTimeout(resolve, SILENCE_MS));

describe('the TCP proxy of the cluster workload', () => {
  it('passes bytes, delays them in latency mode, and resets connections and new ones in reset mode', async () => {
    const p = await setup();
    const c = await open(p);
    c.socket.write('one');
    await echoed(c, 'one');
    p.mode({ kind: 'latency', upMs: 100, downMs: 100 });
    c.socket.write('two');
    expect(await echoed(c, 'two')).toBeGreaterThanOrEqual(190);
    p.mode({ kind: 'pass' });
    c.socket.write('three');
    await echoed(c, 'three');

    p.mode({ kind: 'reset' });
    await c.closed;
    const refused = await open(p);
    await refused.closed;
    p.mode({ kind: 'pass' });
    const again = await open(p);
    again.socket.write('four');
    await echoed(again, 'four');
  });

  it('drops every byte in blackhole mode and keeps the connection open until it ends', async () => {
    const p = await setup();
    const c = await open(p);
    p.mode({ kind: 'blackhole' });
    c.socket.write('lost');
    await silence();
    expect(c.received()).toBe('');
    expect(c.socket.destroyed).toBe(false);
    p.mode({ kind: 'pass' });
    await c.closed;
  });

  it('holds back what the node sends in holdUp mode', async () => {
    const p = await setup();
    const c = await open(p);
    p.mode({ kind: 'holdUp' });
    c.socket.write('write');
    await silence();
    expect(arrived).toBe('');
    expect(c.received()).toBe('');
  });

  it('lets the COMMIT of a marked transaction through and holds every answer from then on', async () => {
    const p = await setup();
    const c = await open(p);
    const fired = p.holdRepliesAfterCommitOf('INSERT INTO revisions');
    c.socket.write('BEGIN; INSERT INTO other; COMMIT;');
    await echoed(c, 'COMMIT;');
    c.socket.write('BEGIN; INSERT INTO revisions');
    await echoed(c, 'revisions');
    c.socket.write('COMMIT');
    await fired;
    await silence();
    expect(arrived.endsWith('COMMIT')).toBe(true);
    expect(c.received().endsWith('revisions')).toBe(true);
  });

  it('holds the COMMIT of a marked transaction, and what follows it, until released', async () => {
    const p = await setup();
    const c = await open(p);
    const other = await open(p);
    const hold = p.holdCommitOf('INSERT INTO revisions');
    c.socket.write('BEGIN; INSERT INTO revisions');
    await echoed(c, 'revisions');
    c.socket.write('COMMIT');
    await hold.arrived;
    c.socket.write('; SELECT 1');
    // Another connection is not held.
    other.socket.write('BEGIN; COMMIT');
    await echoed(other, 'BEGIN; COMMIT');
    expect(arrived.includes('revisionsCOMMIT')).toBe(false);
    hold.release();
    await echoed(c, 'COMMIT; SELECT 1');
  });
});
