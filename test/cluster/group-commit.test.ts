import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { JournalRecord, JournalStore } from '../../src/cluster/journal-batch.ts';
import { LockJournal } from '../../src/cluster/journal.ts';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { LockManager, SessionRegistry } from '../../src/concurrency/index.ts';
import { LockstepError } from '../../src/protocol/errors.ts';

// The journal's group commit (docs/cluster.md, "What is durable when") against a store whose
// commits the test ends by hand: what goes into which commit, what counts as committed, and how
// long a reply waits.

interface Commit {
  records: JournalRecord[];
  upTo: number;
  ok(): void;
  fail(err: unknown): void;
}

class HandStore implements JournalStore {
  readonly commits: Commit[] = [];
  write(records: readonly JournalRecord[], upTo: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.commits.push({ records: [...records], upTo, ok: resolve, fail: reject }),
    );
  }
  /** The commit in flight, once one has started (within a few turns): exactly one. */
  async next(): Promise<Commit> {
    for (let i = 0; i < 10 && this.commits.length === 0; i++) await turn();
    expect(this.commits).toHaveLength(1);
    return this.commits.shift()!;
  }
}

/** One turn of the event loop: a commit starts at the end of the turn its changes were made in. */
const turn = () => new Promise((resolve) => setImmediate(resolve));
const settled = async (p: Promise<void>) =>
  p.then(
    () => 'committed',
    (err: LockstepError) => err.type,
  );

function setup(waitMs = 1_000) {
  const clock = new FakeClock();
  const store = new HandStore();
  const errors: unknown[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => errors.push(JSON.parse(line)) });
  const journal = new LockJournal(store, { clock, logger, head: 10, waitMs });
  const locks = new LockManager({ clock });
  const sessions = new SessionRegistry({ clock, locks, graceMs: 10_000 });
  journal.attach(locks, sessions);
  const { session } = sessions.register({ role: 'agent', name: 's' });
  const write = (fn: number, description?: string) =>
    locks.acquire(session.id, {
      resources: [{ program: 'main', function: fn }],
      mode: 'write',
      ...(description === undefined ? {} : { description }),
    });
  return { clock, store, journal, locks, session, write, errors };
}

describe('group commit', () => {
  it('commits one turn in one commit, and what comes meanwhile in the next', async () => {
    const { store, journal, write } = setup();
    write(1);
    write(2);
    // Numbered on from the head the previous leader left: the session, then two grants.
    expect(journal.head).toBe(13);
    const first = journal.durable()!;
    expect(store.commits).toEqual([]);
    const c1 = await store.next();
    expect(c1.records.map((r) => [r.seq, r.kind])).toEqual([
      [11, 'joined'],
      [12, 'held'],
      [13, 'held'],
    ]);
    expect(c1.upTo).toBe(13);

    write(3);
    write(4);
    const second = journal.durable()!;
    await turn();
    // One commit at a time: the next waits for this one.
    expect(store.commits).toEqual([]);
    c1.ok();
    expect(await settled(first)).toBe('committed');
    expect(journal.committed).toBe(13);
    const c2 = await store.next();
    expect(c2.records.map((r) => r.seq)).toEqual([14, 15]);
    expect(journal.durable(13)).toBeUndefined();
    c2.ok();
    expect(await settled(second)).toBe('committed');
    expect(journal.committed).toBe(15);
    expect(journal.durable()).toBeUndefined();
  });

  it('keeps a reply waiting through failed commits for its wait, then refuses it; later ones go through', async () => {
    const { clock, store, journal, write } = setup(1_000);
    write(1);
    const early = settled(journal.durable()!);
    (await store.next()).fail(new LockstepError('STORE_UNAVAILABLE', 'away', {}, 300));
    await turn();
    // Tried again after the store's backoff, with what was recorded meanwhile.
    write(2);
    await turn();
    expect(store.commits).toEqual([]);
    clock.advance(300);
    const retry = await store.next();
    expect(retry.records.map((r) => r.seq)).toEqual([11, 12, 13]);
    const late = settled(journal.durable()!);
    clock.advance(700);
    expect(await early).toBe('STORE_UNAVAILABLE');
    retry.ok();
    expect(await late).toBe('committed');
    expect(journal.committed).toBe(13);
  });

  it('writes a batch PostgreSQL refuses for its data record by record, a lock it cannot record as dropped', async () => {
    const { store, journal, write, session, errors } = setup();
    write(1);
    write(2, 'refused by a CHECK constraint');
    write(3);
    const reply = settled(journal.durable()!);
    (await store.next()).fail(Object.assign(new Error('new row violates check constraint'), { code: '23514' }));
    for (const seq of [11, 12]) {
      const one = await store.next();
      expect(one.records.map((r) => r.seq)).toEqual([seq]);
      one.ok();
    }
    (await store.next()).fail(Object.assign(new Error('new row violates check constraint'), { code: '23514' }));
    const instead = await store.next();
    expect(instead.upTo).toBe(13);
    expect(instead.records).toEqual([
      { seq: 13, kind: 'dropped', sessionId: session.id, resource: { program: 'main', function: 2 } },
    ]);
    instead.ok();
    const last = await store.next();
    expect(last.records.map((r) => [r.seq, r.kind])).toEqual([[14, 'held']]);
    last.ok();
    expect(await reply).toBe('committed');
    expect(errors).toHaveLength(1);
    // Not stuck: the next change is committed as usual.
    write(4);
    expect((await store.next()).records.map((r) => r.seq)).toEqual([15]);
  });
});
