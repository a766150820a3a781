import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/index.ts';
import { start } from '../../src/server.ts';
import { isLoopbackHost, originAllowed, serverHostNames } from '../../src/transport/origin.ts';
import type { TestClient } from '../helpers/client.ts';
import { protocolDoc } from '../helpers/protocol-doc.ts';
import { addFunctions, useServers } from '../helpers/server.ts';

// What docs/protocol.md tells client authors in other languages, where no other test pins it down.

/** Sends a request as raw JSON text (for literals JavaScript cannot hold) and resolves with its reply. */
async function rawCall(c: TestClient, id: number, text: string) {
  const reply = c.take((f) => f.id === id);
  c.send(text);
  return reply;
}

describe('documented behaviour', () => {
  const t = useServers();

  it('has main, empty, on a fresh server', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    expect(await a.call('program.list')).toEqual({ programs: [{ name: 'main', revision: 0, functions: 0 }] });
  });

  it('reads numbers as IEEE doubles: 2^53 + 1 is stored as 2^53, an id above 2^53 - 1 is refused', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const add = (id: string, value: string) =>
      `{"op":"addNode","function":${f},"node":{"id":${id},"op":"const","attrs":{"v":${value}}}}`;
    const ok = await rawCall(
      a,
      901,
      `{"jsonrpc":"2.0","id":901,"method":"edit.apply","params":{"ops":[${add('1', '9007199254740993')},${add('2', '1.0')}]}}`,
    );
    expect(ok.error).toBeUndefined();
    const got = await a.call('function.get', { function: f });
    expect(got.function.nodes.map((n: any) => n.attrs.v)).toEqual([9007199254740992, 1]);
    const bad = await rawCall(
      a,
      902,
      `{"jsonrpc":"2.0","id":902,"method":"edit.apply","params":{"ops":[${add('9007199254740993', '0')}]}}`,
    );
    expect(bad.error).toMatchObject({
      code: -32602,
      data: { issues: [{ path: ['ops', 0, 'node', 'id'], code: 'too_big' }, expect.anything()] },
    });
  });

  it('refuses U+0000 and lone surrogates in every string, naming the field', async () => {
    const s = await t.server();
    const raw = await t.raw(s);
    const hello = await raw.fail('session.hello', { protocol: 1, name: 'a\ud800' });
    expect(hello).toMatchObject({ code: -32602, data: { issues: [{ path: ['name'] }] } });
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    const description = await a.fail('lock.acquire', { functions: [f], mode: 'write', description: 'd\u0000' });
    expect(description).toMatchObject({ code: -32602, data: { issues: [{ path: ['description'] }] } });
    await a.call('lock.acquire', { structure: true, functions: [f], mode: 'write' });
    const name = await a.fail('edit.apply', { ops: [{ op: 'addFunction', name: 'g\ud800' }] });
    expect(name).toMatchObject({ code: -32602, data: { issues: [{ path: ['ops', 0, 'name'] }] } });
    const key = await a.fail('edit.apply', {
      ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'x', attrs: { k: ['\u0000'] } } }],
    });
    expect(key).toMatchObject({ code: -32602, data: { issues: [{ path: ['ops', 0, 'node', 'attrs', 'k', 0] }] } });
    // Paired surrogates are text like any other.
    expect((await a.call('edit.apply', { ops: [{ op: 'addFunction', name: 'g😀' }] })).created[0].name).toBe('g😀');
  });

  it('renews a lock without ttlMs for the ttl it was last given, not the default', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 600_000 });
    const before = Date.now();
    const { grants } = await a.call('lock.renew', { functions: [f] });
    const left = Date.parse(grants[0].expiresAt) - before;
    // 10 minutes from the renewal, far from the 30-minute default.
    expect(left).toBeGreaterThan(590_000);
    expect(left).toBeLessThanOrEqual(600_000 + 1000);
  });

  it("names the limit in RATE_LIMITED's data.limit, and the reason a retried acquire's ticket went in NOT_FOUND", async () => {
    const s = await t.server({ rateLimit: 1, rateBurst: 1 });
    const a = await t.agent(s, 'a');
    const limited = await a.fail('session.ping');
    expect(limited.data).toMatchObject({ type: 'RATE_LIMITED', limit: 'rateLimit', rateLimit: 1, rateBurst: 1 });

    const s2 = await t.server();
    const [b, c] = [await t.agent(s2, 'b'), await t.agent(s2, 'c')];
    const [f] = await addFunctions(b, ['f']);
    await b.call('lock.acquire', { functions: [f], mode: 'write' });
    const queued = await c.call('lock.acquire', { functions: [f], mode: 'write', wait: true, key: 'k1' });
    await c.call('lock.cancel', { ticket: queued.ticket });
    expect((await c.fail('lock.acquire', { functions: [f], mode: 'write', wait: true, key: 'k1' })).data).toEqual({
      type: 'NOT_FOUND',
      retryable: false,
      ticket: queued.ticket,
      reason: 'cancel',
    });
  });

  it('does not count automatic pongs as activity: only calls keep a session from its idle timeout', async () => {
    const clock = new FakeClock();
    const s = await t.server({ clock, heartbeatMs: 100, idleTimeoutMs: 10_000 });
    const [idle, pinging] = [await t.agent(s, 'idle'), await t.agent(s, 'pinging')];
    // Both sockets answer the server's pings (ws does so by itself) a few times.
    await Promise.all(
      [idle, pinging].map(
        (c) =>
          new Promise<void>((resolve) => {
            let pings = 0;
            c.ws.on('ping', () => ++pings === 3 && resolve());
          }),
      ),
    );
    clock.advance(6_000);
    await pinging.call('session.ping');
    clock.advance(6_000);
    expect((await idle.closed).code).toBe(4000);
    expect((await pinging.call('session.ping')).time).toEqual(expect.any(String));
  });

  it('closes a text frame that is not UTF-8 with 1007', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    a.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    expect((await a.closed).code).toBe(1007);
  });

  it("counts as the dashboard's own origin only the host name the page itself used", () => {
    const names = serverHostNames('127.0.0.1');
    const upgrade = (origin: string, host: string) =>
      originAllowed({ headers: { origin, host } } as IncomingMessage, names, new Set());
    expect(upgrade('http://127.0.0.1:7420', '127.0.0.1:7420')).toBe(true);
    expect(upgrade('http://localhost:7420', 'localhost:7420')).toBe(true);
    // localhost and 127.0.0.1 are different origins.
    expect(upgrade('http://localhost:7420', '127.0.0.1:7420')).toBe(false);
    expect(upgrade('http://127.0.0.1:7420', 'localhost:7420')).toBe(false);
  });

  it('takes only localhost, ::1 and dotted 127.x.y.z as loopback: 127.1 and the like need tokens', async () => {
    for (const host of ['localhost', '127.0.0.1', '127.45.6.7', '::1', '[::1]'])
      expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['127.1', '2130706433', '0x7f.0.0.1', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(host)).toBe(false);
    await expect(start({ host: '127.1', port: 0, db: ':memory:', logLevel: 'silent' })).rejects.toThrow(
      /refusing to listen on 127\.1 without tokens/,
    );
  });

  it("answers LOCK_DENIED with the message of the errors section's example", async () => {
    const example = /"error":\{"code":423,"message":"([^"]+)","data":\{"type":"LOCK_DENIED"/.exec(protocolDoc);
    expect(example?.[1]).toBe('write lock not available on main/f3');
    const s = await t.server();
    const [planner, b] = [await t.agent(s, 'planner'), await t.agent(s, 'b')];
    const [f] = await addFunctions(planner, ['f']);
    await planner.call('lock.acquire', { functions: [f], mode: 'write', description: 'refactor' });
    const denied = await b.fail('lock.acquire', { functions: [f], mode: 'write' });
    expect(denied).toMatchObject({ code: 423, message: example?.[1]?.replace('f3', `f${f}`) });
  });
});
