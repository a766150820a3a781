import { describe, expect, it } from 'vitest';
import type { TestClient } from '../helpers/client.ts';
import { addFunctions, useServers } from '../helpers/server.ts';

interface Item {
  seq: number;
  topic: string;
  type: string;
  data: Record<string, any>;
}

const ALL = ['agents', 'locks', 'edits'];

/**
 * Every `event` a client receives, in arrival order, including those a TestClient waiter takes:
 * the listener sits on the socket itself.
 */
function record(c: TestClient): Item[] {
  const seen: Item[] = [];
  c.ws.on('message', (data) => {
    const f = JSON.parse(data.toString());
    if (f.method === 'event') seen.push(f.params);
  });
  return seen;
}

/** Resolves once the recorded stream holds an item matching. */
function until(c: TestClient, seen: Item[], match: (i: Item) => boolean): Promise<void> {
  if (seen.some(match)) return Promise.resolve();
  return c.notification('event', match).then(() => undefined);
}

function expectContiguous(seqs: number[]): void {
  expect(seqs.length).toBeGreaterThan(0);
  const first = seqs[0]!;
  expect(seqs).toEqual(seqs.map((_, i) => first + i));
}

async function roundTrips(c: TestClient, functions: number[], n: number, description?: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    await c.call('lock.acquire', { functions, mode: 'write', ...(description === undefined ? {} : { description }) });
    await c.call('lock.release', { functions });
  }
}

describe('event stream', () => {
  const t = useServers();

  it('replays after since exactly what a live subscriber saw, across a reconnect', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);

    const live = await t.agent(s, 'live', 'observer');
    const liveSeen = record(live);
    const liveSub = await live.call('events.subscribe', { topics: ALL, since: 0 });
    expect(liveSub).toMatchObject({ truncated: false, oldest: 1 });
    expect(liveSub.replayed).toBe(liveSub.seq);

    const first = await t.agent(s, 'resumer', 'observer');
    const firstSeen = record(first);
    await first.call('events.subscribe', { topics: ALL });
    await roundTrips(a, [f], 3);
    await until(first, firstSeen, (i) => i.type === 'released');
    const lastSeen = firstSeen.at(-1)!.seq;
    await first.close();

    // Traffic keeps flowing while the reader reconnects, so replay and live items meet mid-stream.
    const traffic = roundTrips(a, [f], 20);
    const second = await t.agent(s, 'resumer', 'observer');
    const secondSeen = record(second);
    const sub = await second.call('events.subscribe', { topics: ALL, since: lastSeen });
    expect(sub.truncated).toBe(false);
    expect(sub.replayed).toBe(sub.seq - lastSeen);
    await traffic;
    await addFunctions(a, ['g']);
    const last = s.inspect().events.lastSeq;
    await until(live, liveSeen, (i) => i.seq === last);
    await until(second, secondSeen, (i) => i.seq === last);

    const liveSeqs = liveSeen.map((i) => i.seq);
    expectContiguous(liveSeqs);
    expect(liveSeqs[0]).toBe(1);
    const resumed = [...firstSeen, ...secondSeen];
    expectContiguous(resumed.map((i) => i.seq));
    expect(resumed).toEqual(liveSeen.filter((i) => i.seq >= resumed[0]!.seq));
    expect(resumed.at(-1)!.seq).toBe(last);
    expect(resumed.some((i) => i.type === 'committed')).toBe(true);
  });

  it('reports a since older than the buffer, and one from an earlier run, as truncated', async () => {
    const s = await t.server({ eventBuffer: 5 });
    const a = await t.agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    await roundTrips(a, [f], 4);
    const o = await t.agent(s, 'o', 'observer');
    const seen = record(o);
    const seq = s.inspect().events.lastSeq;
    expect(seq).toBeGreaterThan(10);

    const tooOld = await o.call('events.subscribe', { topics: ALL, since: 1 });
    expect(tooOld).toMatchObject({ truncated: true, oldest: seq - 4, seq });
    expect(seen.map((i) => i.seq)).toEqual([seq - 4, seq - 3, seq - 2, seq - 1, seq]);

    // Already followed live: nothing is replayed twice.
    const inBuffer = await o.call('events.subscribe', { topics: ['locks'], since: seq - 5, runId: tooOld.runId });
    expect(inBuffer).toMatchObject({ truncated: false, replayed: 0, oldest: seq - 4, seq, runId: s.inspect().runId });
    expect(seen).toHaveLength(5);

    const future = await o.call('events.subscribe', { topics: ALL, since: seq + 100 });
    expect(future).toMatchObject({ truncated: true, replayed: 0, seq });

    const o2 = await t.agent(s, 'o2', 'observer');
    const otherRun = await o2.call('events.subscribe', { topics: ['locks'], since: seq - 1, runId: 'an-earlier-run' });
    expect(otherRun).toMatchObject({ truncated: true, runId: s.inspect().runId });
  });

  it('drops a subscriber that stops reading (1013) while the others keep an unbroken stream', async () => {
    const s = await t.server({ maxBufferedBytes: 64 * 1024 });
    const a = await t.agent(s, 'a');
    const functions = await addFunctions(
      a,
      Array.from({ length: 64 }, (_, i) => `f${i}`),
    );

    // The slow reader subscribes first, so it is dropped while an event is being fanned out to
    // the subscribers after it: their order must survive that.
    const slow = await t.agent(s, 'slow', 'observer');
    await slow.call('events.subscribe', { topics: ALL });
    const fast = await t.agent(s, 'fast', 'observer');
    const fastSeen = record(fast);
    await fast.call('events.subscribe', { topics: ALL });
    (slow.ws as any)._socket.pause();

    const dropped = (i: Item) => i.type === 'left' && i.data.sessionId === slow.sessionId;
    let rounds = 0;
    // Each round trip puts two ~7 KB events on the stream; the kernel's socket buffers fill first.
    while (!fastSeen.some(dropped)) {
      expect(rounds++).toBeLessThan(3000);
      await roundTrips(a, functions, 1);
    }

    (slow.ws as any)._socket.resume();
    expect((await slow.closed).code).toBe(1013);
    await roundTrips(a, functions, 1);
    await until(fast, fastSeen, (i) => i.type === 'released' && i.seq === s.inspect().events.lastSeq);
    expectContiguous(fastSeen.map((i) => i.seq));

    const metrics = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    expect(metrics).toMatch(/^lockstep_slow_consumers_dropped_total 1$/m);
  });
});
