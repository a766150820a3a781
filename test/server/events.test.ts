import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/index.ts';
import type { TestClient } from '../helpers/client.ts';
import { eventRows } from '../helpers/protocol-doc.ts';
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
function eventSeen(c: TestClient, seen: Item[], match: (i: Item) => boolean): Promise<void> {
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
    await eventSeen(first, firstSeen, (i) => i.type === 'released');
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
    await eventSeen(live, liveSeen, (i) => i.seq === last);
    await eventSeen(second, secondSeen, (i) => i.seq === last);

    const liveSeqs = liveSeen.map((i) => i.seq);
    expectContiguous(liveSeqs);
    expect(liveSeqs[0]).toBe(1);
    const resumed = [...firstSeen, ...secondSeen];
    expectContiguous(resumed.map((i) => i.seq));
    expect(resumed).toEqual(liveSeen.filter((i) => i.seq >= resumed[0]!.seq));
    expect(resumed.at(-1)!.seq).toBe(last);
    expect(resumed.some((i) => i.type === 'committed')).toBe(true);
  });

  it('puts every refused edit on the edits topic as a conflict (who, which functions, lock, fence or hash), and lock denials on locks', async () => {
    const s = await t.server();
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const [f, g] = await addFunctions(a, ['f', 'g']);
    const watcher = await t.agent(s, 'watcher', 'observer');
    const seen = record(watcher);
    await watcher.call('events.subscribe', { topics: ['edits', 'locks'] });
    const who = { sessionId: a.sessionId, name: 'a', program: 'main' };
    const node = (id: number) => ({ op: 'addNode', function: f, node: { id, op: 'const' } });

    // lock: no lock at all, a missing structure lock, both at once.
    expect((await a.fail('edit.apply', { ops: [node(1)] })).data!.type).toBe('LOCK_REQUIRED');
    expect((await a.fail('edit.apply', { ops: [{ op: 'addFunction', name: 'h' }] })).data!.type).toBe('LOCK_REQUIRED');
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    expect((await a.fail('edit.apply', { ops: [{ op: 'renameFunction', function: f, name: 'f2' }] })).data!.type).toBe(
      'LOCK_REQUIRED',
    );
    // b holds g: a's undo of a revision that changed g lacks g's lock.
    const base = await a.call('edit.apply', { ops: [node(1)] });
    await b.call('lock.acquire', { functions: [g], mode: 'write' });
    const onG = await b.call('edit.apply', { ops: [{ op: 'addNode', function: g, node: { id: 1, op: 'x' } }] });
    expect((await a.fail('history.undo', { revision: onG.revision })).data!.type).toBe('LOCK_REQUIRED');

    // fence: a stale token on f.
    const held = await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const fence = held.grants[0].fence;
    const undone = await a.call('history.undo', { revision: base.revision });
    expect((await a.fail('history.redo', { revision: undone.revision, fences: { [f]: fence + 1 } })).data!.type).toBe(
      'STALE_FENCE',
    );

    // hash: an expected hash that is no longer current.
    const stale = (await a.call('function.get', { function: f })).hash;
    await a.call('checkpoint.create', { name: 'cp' });
    await a.call('history.redo', { revision: undone.revision });
    expect((await a.fail('edit.apply', { ops: [node(2)], expectedHashes: { [f]: stale } })).data!.type).toBe(
      'CONFLICT',
    );
    expect((await a.fail('checkpoint.restore', { name: 'cp', expectedHashes: { [f]: stale } })).data!.type).toBe(
      'CONFLICT',
    );

    // A lock denial is on the locks topic already.
    expect((await b.fail('lock.acquire', { functions: [f], mode: 'write' })).data!.type).toBe('LOCK_DENIED');

    // A marker edit: everything before it on the stream has arrived once it has.
    const last = await a.call('edit.apply', { ops: [node(3)] });
    await eventSeen(watcher, seen, (i) => i.type === 'committed' && i.data.revision === last.revision);
    expect(seen.filter((i) => i.type === 'conflict').map((i) => ({ topic: i.topic, ...i.data }))).toEqual([
      { topic: 'edits', ...who, method: 'edit.apply', reason: 'lock', functions: [f] },
      { topic: 'edits', ...who, method: 'edit.apply', reason: 'lock', functions: [], structure: true },
      { topic: 'edits', ...who, method: 'edit.apply', reason: 'lock', functions: [], structure: true },
      { topic: 'edits', ...who, method: 'history.undo', reason: 'lock', functions: [g] },
      { topic: 'edits', ...who, method: 'history.redo', reason: 'fence', functions: [f] },
      { topic: 'edits', ...who, method: 'edit.apply', reason: 'hash', functions: [f] },
      { topic: 'edits', ...who, method: 'checkpoint.restore', reason: 'hash', functions: [f] },
    ]);
    expect(seen.filter((i) => i.type === 'denied').map((i) => i.data)).toEqual([
      {
        sessionId: b.sessionId,
        name: 'b',
        mode: 'write',
        resources: [{ program: 'main', function: f }],
        blockers: [
          {
            resource: { program: 'main', function: f },
            holders: [{ sessionId: a.sessionId, name: 'a', mode: 'write', expiresAt: expect.any(String) }],
            queueLength: 0,
          },
        ],
      },
    ]);
  });

  it('carries in every event exactly the data fields docs/protocol.md lists for its type', async () => {
    const documented = new Map(eventRows().map((r) => [r.key, r]));
    expect(documented.size).toBeGreaterThan(15);
    const clock = new FakeClock();
    const s = await t.server({ clock, sessionGraceMs: 60_000 });
    const watcher = await t.agent(s, 'watcher', 'observer');
    const seen = record(watcher);
    await watcher.call('events.subscribe', { topics: ALL });

    // agents: joined, detached, resumed (and left at the end).
    const [a, b] = [await t.agent(s, 'a'), await t.agent(s, 'b')];
    const dropping = await t.raw(s);
    const hello = await dropping.call('session.hello', { protocol: 1, name: 'dropping' });
    dropping.ws.terminate();
    await eventSeen(watcher, seen, (i) => i.type === 'detached');
    const back = await t.raw(s);
    await back.call('session.hello', {
      protocol: 1,
      resume: { sessionId: hello.sessionId, secret: hello.resumeSecret },
    });

    // locks: granted, queued, dequeued, denied, deadlock, renewed, downgraded, expiring, expired, released.
    const [f, g] = await addFunctions(a, ['f', 'g']);
    await a.call('lock.acquire', { functions: [f], mode: 'write', ttlMs: 1000, description: 'why' });
    const waiting = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
    await b.call('lock.cancel', { ticket: waiting.ticket });
    await b.fail('lock.acquire', { functions: [f], mode: 'write' });
    await b.call('lock.acquire', { functions: [g], mode: 'write' });
    const cross = await a.call('lock.acquire', { functions: [g], mode: 'write', wait: true });
    expect((await b.fail('lock.acquire', { functions: [f], mode: 'write', wait: true })).data!.type).toBe('DEADLOCK');
    await a.call('lock.cancel', { ticket: cross.ticket });
    await a.call('lock.renew', { functions: [f] });
    await a.call('lock.downgrade', { functions: [f] });
    clock.advance(1000);

    // edits: committed (above), conflict, programCreated, programDeleted.
    await a.fail('edit.apply', { ops: [{ op: 'addFunction', name: 'h' }] });
    await a.call('program.create', { name: 'aux' });
    await a.call('lock.acquire', { program: 'aux', structure: true, mode: 'write' });
    await a.call('program.delete', { program: 'aux' });

    await b.close();
    await eventSeen(watcher, seen, (i) => i.type === 'left' && i.data.name === 'b');

    for (const item of seen) {
      const fields = documented.get(`${item.topic} ${item.type}`);
      expect(fields, `${item.topic} ${item.type} is documented`).toBeDefined();
      const keys = Object.keys(item.data);
      expect(
        fields!.required.filter((k) => !keys.includes(k)),
        `${item.type}: documented fields missing`,
      ).toEqual([]);
      expect(
        keys.filter((k) => !fields!.required.includes(k) && !fields!.optional.includes(k)),
        `${item.type}: undocumented fields`,
      ).toEqual([]);
    }
    // Every documented type was seen, so every row of the tables was checked.
    expect([...new Set(seen.map((i) => `${i.topic} ${i.type}`))].sort()).toEqual([...documented.keys()].sort());
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
    // Without resume grace (the cluster default has it): the dropped reader leaves at once.
    const s = await t.server({ maxBufferedBytes: 64 * 1024, sessionGraceMs: 0 });
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
    await eventSeen(fast, fastSeen, (i) => i.type === 'released' && i.seq === s.inspect().events.lastSeq);
    expectContiguous(fastSeen.map((i) => i.seq));

    const metrics = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    expect(metrics).toMatch(/^lockstep_slow_consumers_dropped_total 1$/m);
  });
});
