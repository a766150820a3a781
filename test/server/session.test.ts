import { WebSocket } from 'ws';
import { describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/client.ts';
import { addFunctions, useServers } from '../helpers/server.ts';

describe('sessions over the wire', () => {
  const t = useServers();

  it('says hello with the session id, defaults and limits, and answers ping', async () => {
    const s = await t.server();
    const c = await t.raw(s);
    const r = await c.call('session.hello', { protocol: 1, name: 'alice' });
    expect(r).toMatchObject({
      name: 'alice',
      role: 'agent',
      protocol: 1,
      server: { name: 'lockstep', version: expect.any(String) },
      heartbeatMs: expect.any(Number),
      lock: { defaultTtlMs: 1_800_000, minTtlMs: 100, maxTtlMs: expect.any(Number), warningMs: 60_000 },
      limits: { maxMessageBytes: 1_048_576, hardMaxMessageBytes: 8_388_608 },
    });
    expect(r.sessionId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Resume grace is off by default on SQLite, on (10 s) in cluster mode (a PostgreSQL store).
    if (process.env.LOCKSTEP_TEST_DB === 'postgres')
      expect(r).toMatchObject({ resumeSecret: expect.any(String), graceMs: 10_000 });
    else expect(r.resumeSecret).toBeUndefined();
    const ping = await c.call('session.ping');
    expect(Date.parse(ping.time)).not.toBeNaN();
  });

  it("releases a closing session's locks when its close frame arrives, not when TCP closes", async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    expect((await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true })).status).toBe('queued');
    // a sends its close frame and stops reading: the server's answering close frame and FIN sit
    // unread, so the TCP connection cannot finish closing until a reads again.
    let closed = false;
    void a.closed.then(() => {
      closed = true;
    });
    a.ws.close(1000);
    a.ws.pause();
    await b.notification('lock.granted');
    expect(closed).toBe(false);
    a.ws.resume();
    await a.closed;
  });

  it('terminates a socket that stops answering pings and releases its locks', async () => {
    const s = await t.server({ heartbeatMs: 100 });
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    // A half-open peer: connected, but never answering pings.
    const ws = new WebSocket(s.url, { autoPong: false });
    await new Promise((r) => ws.once('open', r));
    const mute = await new Promise<any>((resolve) => {
      ws.once('message', (d) => resolve(JSON.parse(d.toString())));
      ws.send(
        JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'session.hello', params: { protocol: 1, name: 'mute' } }),
      );
    });
    // Its grant answered before a asks: two sockets' frames are read in no set order.
    const held = new Promise((resolve) => ws.once('message', resolve));
    ws.send(
      JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'lock.acquire', params: { functions: [f], mode: 'write' } }),
    );
    await held;
    const q = await a.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    expect(q.status).toBe('queued');
    const granted = await a.notification('lock.granted');
    expect(granted.ticket).toBe(q.ticket);
    const { agents } = await a.call('agent.list');
    expect(agents.map((x: any) => x.sessionId)).not.toContain(mute.result.sessionId);
    ws.terminate();
  });

  it('tells every session about a shutdown and closes with 1001', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const stopped = s.stop('maintenance');
    expect(await a.notification('server.shutdown')).toEqual({ reason: 'maintenance' });
    expect((await a.closed).code).toBe(1001);
    await stopped;
  });

  it("with resume grace, keeps a dropped session's locks and hands them back", async () => {
    const s = await t.server({ sessionGraceMs: 60_000 });
    const a = await TestClient.connect(s.url);
    const hello = await a.call('session.hello', { protocol: 1, name: 'a' });
    expect(hello.resumeSecret).toEqual(expect.any(String));
    const [f] = await addFunctions(a, ['f']);
    const g = await a.call('lock.acquire', { functions: [f], mode: 'write' });
    a.ws.terminate();
    await a.closed;

    const b = await t.agent(s, 'b');
    expect((await b.fail('lock.acquire', { functions: [f], mode: 'write' })).data!.type).toBe('LOCK_DENIED');

    const wrong = await TestClient.connect(s.url);
    expect(
      (await wrong.fail('session.hello', { protocol: 1, resume: { sessionId: hello.sessionId, secret: 'x' } })).data!
        .type,
    ).toBe('UNAUTHORIZED');
    await wrong.close();

    const back = await TestClient.connect(s.url);
    const r = await back.call('session.hello', {
      protocol: 1,
      resume: { sessionId: hello.sessionId, secret: hello.resumeSecret },
    });
    expect(r).toMatchObject({ sessionId: hello.sessionId, resumed: true });
    const st = await back.call('lock.status', {});
    expect(st.resources[0].holders[0]).toMatchObject({ sessionId: hello.sessionId, fence: g.grants[0].fence });
    await back.call('lock.release', { functions: [f] });
    await back.close();
  });

  it('closes the old socket (4001) when a session is resumed while it still looks connected', async () => {
    const s = await t.server({ sessionGraceMs: 60_000 });
    const old = await t.raw(s);
    const hello = await old.call('session.hello', { protocol: 1, name: 'a' });
    const fresh = await t.raw(s);
    await fresh.call('session.hello', {
      protocol: 1,
      resume: { sessionId: hello.sessionId, secret: hello.resumeSecret },
    });
    expect((await old.closed).code).toBe(4001);
    const { agents } = await fresh.call('agent.list');
    expect(agents).toEqual([expect.objectContaining({ sessionId: hello.sessionId, state: 'connected' })]);
  });

  it("releases a dropped session's locks when the grace runs out", async () => {
    const s = await t.server({ sessionGraceMs: 150 });
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const b = await t.agent(s, 'b');
    const q = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    a.ws.terminate();
    expect((await b.notification('lock.granted')).ticket).toBe(q.ticket);
  });

  it('ends a session that closes its socket on purpose at once, even with resume grace on', async () => {
    const s = await t.server({ sessionGraceMs: 60_000 });
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const b = await t.agent(s, 'b');
    const q = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    await a.close();
    expect((await b.notification('lock.granted')).ticket).toBe(q.ticket);
    expect((await b.call('agent.list')).agents.map((x: any) => x.name)).toEqual(['b']);
  });

  it('refuses new sessions while draining', async () => {
    const s = await t.server();
    const c = await t.raw(s);
    s.inspect().draining = true;
    expect((await c.fail('session.hello', { protocol: 1 })).data).toMatchObject({
      type: 'SHUTTING_DOWN',
      retryable: true,
    });
    s.inspect().draining = false;
  });
});
