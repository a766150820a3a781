import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { addFunctions, useServers } from '../helpers/server.ts';

describe('lock.queue pushes, coalesced', () => {
  const t = useServers();

  it('tells the waiter reaching position 1 at once and the others once per queue-push-ms', async () => {
    // Lock core timers on a fake clock: the coalescing interval passes only when the test says so.
    const clock = new FakeClock(Date.now());
    const s = await t.server({ clock, queuePushMs: 100 });
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map((n) => t.agent(s, n)));
    const [f] = await addFunctions(a!, ['f']);
    const res = { program: 'main', function: f };
    await a!.call('lock.acquire', { functions: [f], mode: 'write' });
    const [qb, qc, qd] = [
      await b!.call('lock.acquire', { functions: [f], mode: 'write', wait: true }),
      await c!.call('lock.acquire', { functions: [f], mode: 'write', wait: true }),
      await d!.call('lock.acquire', { functions: [f], mode: 'write', wait: true }),
    ];

    await a!.call('lock.release', { functions: [f] });
    expect((await b!.notification('lock.granted')).ticket).toBe(qb.ticket);
    expect(await c!.notification('lock.queue')).toEqual({
      ticket: qc.ticket,
      positions: [{ resource: res, position: 1 }],
    });
    // Anything the release pushed to d was written before this reply.
    await d!.call('session.ping');
    expect(d!.pending('lock.queue')).toEqual([]);

    clock.advance(100);
    expect(await d!.notification('lock.queue')).toEqual({
      ticket: qd.ticket,
      positions: [{ resource: res, position: 2 }],
    });
    expect(b!.pending('lock.queue')).toEqual([]);
  });

  it('tells a waiter it is first again when an upgrade that went in front of it is granted', async () => {
    const clock = new FakeClock(Date.now());
    const s = await t.server({ clock, queuePushMs: 100 });
    const [a, b, w] = await Promise.all(['a', 'b', 'w'].map((n) => t.agent(s, n)));
    const [f] = await addFunctions(a!, ['f']);
    await a!.call('lock.acquire', { functions: [f], mode: 'read' });
    await b!.call('lock.acquire', { functions: [f], mode: 'read' });
    const qw = await w!.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    // a's upgrade waits at the front: w is now 2, due with the coalesced push.
    expect((await a!.call('lock.acquire', { functions: [f], mode: 'write', wait: true })).status).toBe('queued');

    await b!.call('lock.release', { functions: [f] });
    await a!.notification('lock.granted');
    // Anything the release pushed to w was written before this reply.
    await w!.call('session.ping');
    expect(w!.pending('lock.queue')).toEqual([
      { ticket: qw.ticket, positions: [{ resource: { program: 'main', function: f }, position: 1 }] },
    ]);
  });
});
