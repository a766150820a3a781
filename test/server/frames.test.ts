import { describe, expect, it } from 'vitest';
import { addFunctions, roundTrip, useServers } from '../helpers/server.ts';

describe('hostile frames', () => {
  const t = useServers();

  it('answers every bad frame with the documented error and keeps both connections alive', async () => {
    const s = await t.server({ maxMessageBytes: 4096, hardMaxMessageBytes: 16_384 });
    const good = await t.agent(s, 'good');
    const [f] = await addFunctions(good, ['f']);
    const bad = await t.raw(s);
    const nullIdError = () => bad.take((fr) => fr.id === null && fr.error !== undefined);

    bad.send('{not json');
    expect((await nullIdError()).error).toMatchObject({ code: -32700 });
    await roundTrip(good, f);

    bad.send(Buffer.from([1, 2, 3]), true);
    expect((await nullIdError()).error!.message).toMatch(/binary/);
    await roundTrip(good, f);

    bad.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'session.ping', params: { pad: 'x'.repeat(5000) } }));
    expect((await nullIdError()).error).toMatchObject({
      code: 413,
      data: { type: 'PAYLOAD_TOO_LARGE', retryable: false, limit: 4096 },
    });
    await roundTrip(good, f);

    bad.send(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'session.ping' }]));
    expect((await nullIdError()).error!.code).toBe(-32600);

    bad.send(JSON.stringify({ jsonrpc: '1.0', id: 7, method: 'x' }));
    expect((await bad.take((fr) => fr.id === 7)).error!.code).toBe(-32600);

    expect((await bad.fail('no.such.method')).code).toBe(-32601);
    expect(await bad.fail('lock.status', {})).toMatchObject({ code: 400, data: { type: 'SESSION_REQUIRED' } });

    const wrongVersion = await bad.fail('session.hello', { protocol: 2 });
    expect(wrongVersion.code).toBe(-32602);
    expect((wrongVersion.data!.issues as any[])[0].path).toEqual(['protocol']);

    await bad.call('session.hello', { protocol: 1, name: 'bad' });
    expect((await bad.fail('session.hello', { protocol: 1 })).code).toBe(-32600);

    const wrongType = await bad.fail('lock.acquire', { functions: ['one'], mode: 'write' });
    expect(wrongType.code).toBe(-32602);
    expect((wrongType.data!.issues as any[])[0].path).toEqual(['functions', 0]);
    expect((await bad.fail('lock.acquire', { mode: 'write' })).code).toBe(-32602);
    expect((await bad.fail('lock.acquire', { functions: [f], mode: 'write', extra: true })).code).toBe(-32602);
    await roundTrip(good, f);

    // Over the hard cap the socket is closed with 1009; the server and the good agent carry on.
    bad.send('x'.repeat(20_000));
    expect((await bad.closed).code).toBe(1009);
    await roundTrip(good, f);
  });

  it('executes notifications (no id) without answering them', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    a.send(JSON.stringify({ jsonrpc: '2.0', method: 'lock.acquire', params: { functions: [f], mode: 'write' } }));
    const st = await a.call('lock.status', {});
    expect(st.resources[0].holders[0].sessionId).toBe(a.sessionId);
  });

  it('writes a reply before the pushes its call causes to the caller', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f] = await addFunctions(a, ['f']);
    await b.call('lock.acquire', { functions: [f], mode: 'write' });
    const first = await a.call('lock.acquire', { functions: [f], mode: 'read', wait: true });
    await a.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    const order: string[] = [];
    a.ws.on('message', (d) => {
      const fr = JSON.parse(d.toString());
      order.push(fr.method ?? `reply ${fr.id}`);
    });
    const cancelled = a.request('lock.cancel', { ticket: first.ticket });
    await a.notification('lock.queue');
    expect((await cancelled).result).toEqual({ ticket: first.ticket, cancelled: true });
    expect(order).toEqual([expect.stringMatching(/^reply /), 'lock.queue']);
  });

  it('never answers a notification, not even when rate limited', async () => {
    const s = await t.server({ rateLimit: 10, rateBurst: 1 });
    const a = await t.agent(s, 'a');
    // The hello took the one token: the notification is the first frame over the rate, refused
    // without an answer; the request after it waits for a token and is served.
    a.send(JSON.stringify({ jsonrpc: '2.0', method: 'session.ping' }));
    expect((await a.request('session.ping')).result).toBeDefined();
    expect(a.frames).toEqual([]);
  });

  it('serves /healthz and 404 elsewhere', async () => {
    const s = await t.server();
    const res = await fetch(`http://127.0.0.1:${s.port}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', uptimeMs: expect.any(Number), sessions: 0, store: true });
    expect((await fetch(`http://127.0.0.1:${s.port}/nope`)).status).toBe(404);
  });

  it('serves /healthz and /metrics without a token on a server that requires one (docs/security.md)', async () => {
    const s = await t.server({ tokens: 'agent:agent-token-0123456789abcdef' });
    expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);
    const metrics = await fetch(`http://127.0.0.1:${s.port}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('lockstep_sessions');
    const c = await t.raw(s);
    expect((await c.fail('session.hello', { protocol: 1 })).data?.type).toBe('UNAUTHORIZED');
  });
});
