import { WebSocket } from 'ws';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { ConfigError } from '../../src/config.ts';
import { start } from '../../src/server.ts';
import { TestClient } from '../helpers/client.ts';
import { addFunctions, useServers } from '../helpers/server.ts';

const AGENT = 'agent-token-0123456789abcdef';
const OBSERVER = 'observer-token-0123456789abcdef';

/** Resolves with the HTTP status of a refused upgrade, or 101 when it went through. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => undefined);
  });
}

describe('security', () => {
  const t = useServers();

  it('asks for a token when tokens are configured, and grants the role it maps to', async () => {
    const s = await t.server({ tokens: `agent:${AGENT},observer:${OBSERVER}` });
    const none = await t.raw(s);
    expect(await none.fail('session.hello', { protocol: 1 })).toMatchObject({
      code: 401,
      data: { type: 'UNAUTHORIZED' },
    });
    expect((await none.closed).code).toBe(1008);

    const wrong = await t.raw(s);
    expect((await wrong.fail('session.hello', { protocol: 1, token: `${AGENT}x` })).data!.type).toBe('UNAUTHORIZED');
    expect((await wrong.closed).code).toBe(1008);

    const obs = await t.raw(s);
    expect((await obs.fail('session.hello', { protocol: 1, token: OBSERVER, role: 'agent' })).data).toMatchObject({
      type: 'FORBIDDEN',
      method: 'session.hello',
      role: 'agent',
    });
    expect((await obs.call('session.hello', { protocol: 1, token: OBSERVER })).role).toBe('observer');

    const agent = await t.raw(s);
    expect((await agent.call('session.hello', { protocol: 1, token: AGENT })).role).toBe('agent');
    expect((await agent.call('session.hello', { protocol: 1, token: AGENT }).catch((e) => e.error)).code).toBe(-32600);
  });

  it('refuses a token that is not a string of the allowed length as it refuses an unknown one', async () => {
    for (const tokens of [undefined, `agent:${AGENT}`]) {
      const s = await t.server(tokens === undefined ? {} : { tokens });
      for (const token of [42, { t: AGENT }, 'x'.repeat(1025)]) {
        const c = await t.raw(s);
        expect(await c.fail('session.hello', { protocol: 1, token })).toMatchObject({
          code: 401,
          data: { type: 'UNAUTHORIZED' },
        });
        expect((await c.closed).code).toBe(1008);
      }
    }
  });

  it('refuses a non-loopback host without tokens unless told it is insecure', async () => {
    await expect(start({ host: '0.0.0.0', port: 0, db: ':memory:', logLevel: 'silent' })).rejects.toThrow(ConfigError);
    await expect(
      start({ host: '0.0.0.0', port: 0, db: ':memory:', logLevel: 'silent', tokens: 'agent:short' }),
    ).rejects.toThrow(/at least 16/);
  });

  it('lets browsers in only from the dashboard origin or an allowed one', async () => {
    const s = await t.server({ allowedOrigins: 'https://ops.example' });
    const host = `127.0.0.1:${s.port}`;
    expect(await upgradeStatus(s.url, {})).toBe(101);
    expect(await upgradeStatus(s.url, { origin: `http://${host}` })).toBe(101);
    expect(await upgradeStatus(s.url, { origin: 'https://ops.example' })).toBe(101);
    expect(await upgradeStatus(s.url, { origin: 'https://evil.example' })).toBe(403);
    // DNS rebinding: a hostile name pointed at 127.0.0.1 is "same origin" but not this server.
    expect(
      await upgradeStatus(s.url, { origin: `http://evil.example:${s.port}`, host: `evil.example:${s.port}` }),
    ).toBe(403);
  });

  it('limits the request rate per session with retryAfterMs, and other sessions are unaffected', async () => {
    const s = await t.server({ rateLimit: 10, rateBurst: 5 });
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const answers = await Promise.all(Array.from({ length: 8 }, () => a.request('session.ping')));
    // The first request over the rate is refused; the ones behind it are paced, not refused.
    const limited = answers.filter((f) => f.error !== undefined);
    expect(limited).toHaveLength(1);
    expect(limited[0]!.error).toMatchObject({
      code: 429,
      data: { type: 'RATE_LIMITED', retryable: true, retryAfterMs: expect.any(Number) },
    });
    expect(answers.indexOf(limited[0]!)).toBeGreaterThanOrEqual(4);
    expect((await b.call('session.ping')).time).toEqual(expect.any(String));
  });

  it('forbids observers every lock method but lock.status', async () => {
    const s = await t.server();
    const o = await t.agent(s, 'watcher', 'observer');
    const calls: Array<[string, object]> = [
      ['lock.acquire', { functions: [1], mode: 'read' }],
      ['lock.release', { functions: [1] }],
      ['lock.releaseAll', {}],
      ['lock.renew', { functions: [1] }],
      ['lock.downgrade', { functions: [1] }],
      ['lock.cancel', { ticket: 't1' }],
    ];
    for (const [method, params] of calls) {
      expect(await o.fail(method, params), method).toMatchObject({
        code: 403,
        data: { type: 'FORBIDDEN', method, role: 'observer' },
      });
    }
    expect((await o.call('lock.status', {})).resources).toEqual([]);
  });

  it('limits locks held and tickets queued per session', async () => {
    const s = await t.server({ maxLocksPerSession: 2, maxTicketsPerSession: 1 });
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f, g, h] = await addFunctions(a, ['f', 'g', 'h']);
    await a.call('lock.acquire', { functions: [f, g], mode: 'write' });
    expect((await a.fail('lock.acquire', { functions: [h], mode: 'write' })).data).toMatchObject({
      type: 'RATE_LIMITED',
      limit: 'maxLocksPerSession',
    });
    expect((await a.call('lock.acquire', { functions: [f], mode: 'write' })).status).toBe('granted');
    expect((await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true })).status).toBe('queued');
    expect((await b.fail('lock.acquire', { functions: [g], mode: 'write', wait: true })).data).toMatchObject({
      type: 'RATE_LIMITED',
      limit: 'maxTicketsPerSession',
    });
  });

  it('counts queued requests towards the locks a session may hold', async () => {
    const s = await t.server({ maxLocksPerSession: 2 });
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f, g, h] = await addFunctions(a, ['f', 'g', 'h']);
    await b.call('lock.acquire', { functions: [f, g], mode: 'write' });
    expect((await a.call('lock.acquire', { functions: [f, g], mode: 'write', wait: true })).status).toBe('queued');
    expect((await a.fail('lock.acquire', { functions: [h], mode: 'write' })).data).toMatchObject({
      type: 'RATE_LIMITED',
      limit: 'maxLocksPerSession',
      claimed: 2,
    });
  });

  it('retries a keyed request with its first answer even when the limits would refuse it now', async () => {
    const s = await t.server({ maxTicketsPerSession: 1 });
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const q = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true, key: 'k' });
    expect(await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true, key: 'k' })).toEqual(q);
  });

  it('serves a long description when the limit is raised above the default', async () => {
    const s = await t.server({ maxDescription: 1000 });
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    expect((await a.call('lock.acquire', { functions: [f], mode: 'write', description: 'x'.repeat(900) })).status).toBe(
      'granted',
    );
  });

  it('closes connections over the session cap with 1013, and silent ones after the hello timeout', async () => {
    // The hello timeout on a fake clock: it passes when the test says, never under an agent's
    // hello that a loaded machine is slow to read.
    const clock = new FakeClock(Date.now());
    const s = await t.server({ clock, maxSessions: 2, helloTimeoutMs: 200 });
    await t.agent(s, 'a');
    const silent = await t.raw(s);
    const third = await TestClient.connect(s.url);
    expect((await third.closed).code).toBe(1013);
    clock.advance(199);
    expect((await silent.fail('session.ping')).data?.type).toBe('SESSION_REQUIRED');
    clock.advance(1);
    expect((await silent.closed).code).toBe(1008);
    await t.agent(s, 'b');
  });

  it('caps pending (not yet hello) connections', async () => {
    const s = await t.server({ maxPending: 1 });
    await t.raw(s);
    const second = await TestClient.connect(s.url);
    expect(await second.closed).toMatchObject({ code: 1013, reason: 'too many pending connections' });
  });
});
