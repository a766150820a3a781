import { describe, expect, it } from 'vitest';
import { addFunctions, useServers } from '../helpers/server.ts';

describe('graceful shutdown', () => {
  const t = useServers();

  it('grants nothing once draining: the waiter gets server.shutdown, never lock.granted; events say shutdown', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const b = await t.agent(s, 'b');
    // Connected last, so it is told everything the other sessions' ends cause before its own.
    const observer = await t.agent(s, 'observer', 'observer');
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const queued = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    await observer.call('events.subscribe', { topics: ['locks'] });

    await s.stop('SIGINT');
    await b.closed;
    await observer.closed;

    expect(b.pending('lock.granted')).toEqual([]);
    expect(b.pending('server.shutdown')).toEqual([{ reason: 'SIGINT' }]);
    const events = observer.pending('event').map((e) => ({ type: e.type, name: e.data.name, reason: e.data.reason }));
    expect(events).toEqual([
      { type: 'released', name: 'a', reason: 'shutdown' },
      { type: 'dequeued', name: 'b', reason: 'shutdown' },
    ]);
    expect(queued.status).toBe('queued');
  });
});
