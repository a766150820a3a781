import type pg from 'pg';
import { pino } from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { LockJournal } from '../../src/cluster/journal.ts';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { LockManager, SessionRegistry } from '../../src/concurrency/index.ts';
import { ProgramService, type SharedDatabase } from '../../src/service/index.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { sql } from './nodes.ts';

// Two transactions write journal batches at once: the timer's, and an edit's. Whichever reaches
// the database first, each record is applied once and in order: a batch taken earlier but
// written later must not put back a lock a later batch already released.

describe('journal batches written by racing transactions', () => {
  it('never let an older batch overwrite a newer one', async () => {
    const url = await freshDatabase(inject('postgresUrl'));
    const programs = await ProgramService.open({ path: url, clock: Date });
    const real = programs.database()!;
    // The timer's transaction is held just before it takes the journal's head row.
    let opened!: () => void;
    const atHead = new Promise<void>((resolve) => (opened = resolve));
    let proceed!: () => void;
    const gate = new Promise<void>((resolve) => (proceed = resolve));
    let held = false;
    const slowed = (client: pg.PoolClient) =>
      ({
        query: async (text: string, values?: unknown[]) => {
          if (!held && text.includes('FOR UPDATE')) {
            held = true;
            opened();
            await gate;
          }
          return client.query(text, values);
        },
      }) as unknown as pg.PoolClient;
    let editStep!: (client: pg.PoolClient) => Promise<() => void>;
    const db: SharedDatabase = {
      transaction: (work) => real.transaction((client) => work(slowed(client))),
      write: (work) => real.transaction((client) => work(slowed(client))),
      beforeEveryCommit: (step) => {
        if (step !== undefined) editStep = step;
      },
    };
    try {
      const clock = new FakeClock();
      const journal = new LockJournal(db, { clock, logger: pino({ level: 'silent' }), batchMs: 10, head: 0 });
      const locks = new LockManager({ clock });
      const sessions = new SessionRegistry({ clock, locks, graceMs: 10_000 });
      journal.attach(locks, sessions);
      const { session } = sessions.register({ role: 'agent', name: 's' });
      const f = { program: 'main', function: 1 };
      locks.acquire(session.id, { resources: [f], mode: 'write' });

      clock.advance(10); // the timer's batch: the session and the grant
      await atHead;
      locks.release(session.id, [f]);
      // An edit's transaction writes everything up to the release, and commits first.
      const committed = await real.transaction((client) => editStep(client));
      committed();
      expect(await sql(url, 'SELECT 1 FROM cluster_locks')).toEqual([]);
      proceed();
      await journal.sync();
      expect(await sql(url, 'SELECT 1 FROM cluster_locks')).toEqual([]);
      expect(await sql(url, 'SELECT session_id FROM cluster_sessions')).toEqual([{ session_id: session.id }]);
    } finally {
      await programs.close();
    }
  });
});
