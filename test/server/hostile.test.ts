import { describe, expect, it } from 'vitest';
import { addFunctions, roundTrip, useServers } from '../helpers/server.ts';

describe('hostile input over raw sockets', () => {
  const t = useServers();

  it('answers malformed and adversarial frames with the documented errors', async () => {
    const s = await t.server();
    const good = await t.agent(s, 'good');
    const [f] = await addFunctions(good, ['f']);
    const bad = await t.agent(s, 'bad');
    const nullId = () => bad.take((fr) => fr.id === null && fr.error !== undefined);

    bad.send('{"jsonrpc":"2.0","id":1,"method":"session.pi');
    expect((await nullId()).error!.code).toBe(-32700);

    bad.send('['.repeat(100_000) + ']'.repeat(100_000));
    expect((await nullId()).error!.code).toBe(-32600);
    bad.send(
      `{"jsonrpc":"2.0","id":2,"method":"lock.acquire","params":{"functions":[1],"mode":"write","description":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`,
    );
    expect((await bad.take((fr) => fr.id === 2)).error!.code).toBe(-32602);
    await roundTrip(good, f);

    // Deep JSON inside node attributes is refused by the schema, not by a stack overflow.
    await bad.call('lock.acquire', { functions: [f], mode: 'write' });
    await bad.call('lock.release', { functions: [f] });
    bad.send(
      `{"jsonrpc":"2.0","id":3,"method":"edit.apply","params":{"ops":[{"op":"addNode","function":${f},"node":{"id":1,"op":"x","attrs":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}}]}}`,
    );
    expect((await bad.take((fr) => fr.id === 3)).error!.code).toBe(-32602);

    expect((await bad.fail('lock.renew', { functions: [f], ttlMs: 1e308 })).code).toBe(-32602);
    expect((await bad.fail('lock.renew', { functions: [2 ** 60] })).code).toBe(-32602);
    expect(
      (await bad.fail('lock.acquire', { functions: [f], mode: 'write', description: 'x'.repeat(100_000) })).code,
    ).toBe(-32602);
    expect((await bad.fail('function.get', { function: 1.5 })).code).toBe(-32602);

    // __proto__ and constructor keys: refused or treated as plain data, never reaching prototypes.
    bad.send('{"jsonrpc":"2.0","id":4,"method":"lock.status","params":{"__proto__":{"program":"main"}}}');
    expect((await bad.take((fr) => fr.id === 4)).error!.code).toBe(-32600);
    bad.send(
      '{"jsonrpc":"2.0","id":5,"method":"edit.apply","params":{"ops":[{"op":"addNode","function":' +
        f +
        ',"node":{"id":1,"op":"x","attrs":{"__proto__":{"polluted":true}}}}]}}',
    );
    expect((await bad.take((fr) => fr.id === 5)).error!.code).toBe(-32600);
    // The string "__proto__" as a value is just data.
    expect((await bad.call('lock.acquire', { functions: [f], mode: 'write', description: '__proto__' })).status).toBe(
      'granted',
    );
    const ctor = await bad.call('edit.apply', {
      ops: [{ op: 'addNode', function: f, node: { id: 2, op: 'x', attrs: { constructor: { prototype: 1 } } } }],
    });
    expect(ctor.revision).toBeGreaterThan(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await bad.fail('constructor')).code).toBe(-32601);
    expect((await bad.fail('__proto__')).code).toBe(-32601);
    expect((await bad.fail('toString')).code).toBe(-32601);
    await bad.call('lock.release', { functions: [f] });

    // Ids of every JSON type: strings, numbers and null are echoed; others make the request invalid.
    for (const id of ['abc', 42, -1.5, 0]) {
      bad.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'session.ping' }));
      expect((await bad.take((fr) => fr.id === id)).result).toBeDefined();
    }
    bad.send(JSON.stringify({ jsonrpc: '2.0', id: null, method: 'session.ping' }));
    expect((await bad.take((fr) => fr.id === null)).result).toBeDefined();
    for (const id of [true, { a: 1 }, [1]]) {
      bad.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'session.ping' }));
      expect((await nullId()).error!.code).toBe(-32600);
    }
    await roundTrip(good, f);
  });

  it('survives a flood of 10,000 requests from one socket while another agent is served', async () => {
    // Past the burst the flood is paced at the rate, not refused frame by frame.
    const s = await t.server({ rateLimit: 4000, rateBurst: 1000 });
    const good = await t.agent(s, 'good');
    const [f] = await addFunctions(good, ['f']);
    const flooder = await t.agent(s, 'flood');
    const heapBefore = process.memoryUsage().heapUsed;

    const frames: string[] = [];
    for (let i = 0; i < 10_000; i++)
      frames.push(
        JSON.stringify({ jsonrpc: '2.0', id: `x${i}`, method: i % 2 ? 'session.ping' : 'lock.status', params: {} }),
      );
    const answered = new Promise<number>((resolve) => {
      let n = 0;
      flooder.ws.on('message', () => {
        if (++n === 10_000) resolve(n);
      });
    });
    for (const fr of frames) flooder.ws.send(fr);
    // The other agent keeps being served in the middle of the flood.
    for (let i = 0; i < 20; i++) await roundTrip(good, f);
    expect(await answered).toBe(10_000);
    const limited = flooder.frames.filter((fr) => fr.error?.data?.type === 'RATE_LIMITED').length;
    expect(limited).toBe(1);
    // Bounded memory: nothing of the flood is retained (generous bound; GC timing varies).
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    await roundTrip(good, f);
  });
});
