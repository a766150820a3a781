import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compact, type FoldedBatch, fold, type JournalRecord } from '../../src/cluster/journal-batch.ts';

// Journal batches as rows: a batch applies the fold of its records; the head names the last
// record applied. Whatever record a batch written meanwhile stopped at, writing the records after
// it gives the rows every record in order gives, and so does writing them compacted.

type Rows = { sessions: Set<string>; locks: Map<string, string> };

/** What lockstep_journal_write (pg-schema.ts migration 9) does to the tables, in memory. */
function apply(rows: Rows, b: FoldedBatch): void {
  for (const id of b.joined.keys()) rows.sessions.add(id);
  for (const key of b.dropped.keys()) rows.locks.delete(key);
  for (const [key, h] of b.held) {
    const ttl = h.ttlMs ?? rows.locks.get(key)?.split('/')[2] ?? 'null';
    rows.locks.set(key, `${h.mode}/${h.fence}/${ttl}`);
  }
  for (const id of b.left.keys()) {
    rows.sessions.delete(id);
    for (const key of [...rows.locks.keys()]) if (key.startsWith(`${id}\n`)) rows.locks.delete(key);
  }
}

const record = fc.oneof(
  fc.record({ kind: fc.constant('joined' as const), sessionId: fc.constantFrom('a', 'b') }),
  fc.record({ kind: fc.constant('left' as const), sessionId: fc.constantFrom('a', 'b') }),
  fc.record({
    kind: fc.constant('held' as const),
    sessionId: fc.constantFrom('a', 'b'),
    fn: fc.integer({ min: 1, max: 3 }),
    mode: fc.constantFrom('read' as const, 'write' as const),
    fence: fc.integer({ min: 1, max: 99 }),
    ttlMs: fc.option(fc.integer({ min: 100, max: 999 })),
  }),
  fc.record({
    kind: fc.constant('dropped' as const),
    sessionId: fc.constantFrom('a', 'b'),
    fn: fc.integer({ min: 1, max: 3 }),
  }),
);

/**
 * As the lock core and the registry make them: a session joins once, has released every lock
 * when it leaves, and is heard of no more.
 */
type Raw = typeof record extends fc.Arbitrary<infer T> ? T : never;

function realistic(raw: Array<Raw>): Array<Raw> {
  const out: Array<Raw> = [];
  const joined = new Set<string>();
  const gone = new Set<string>();
  const holding = new Map<string, Set<number>>();
  for (const r of raw) {
    if (gone.has(r.sessionId) || (r.kind === 'joined' && joined.has(r.sessionId))) continue;
    joined.add(r.sessionId);
    const held = holding.get(r.sessionId) ?? new Set<number>();
    holding.set(r.sessionId, held);
    if (r.kind === 'left') {
      for (const fn of held) out.push({ kind: 'dropped', sessionId: r.sessionId, fn });
      gone.add(r.sessionId);
    } else if (r.kind === 'held') held.add(r.fn);
    else if (r.kind === 'dropped') held.delete(r.fn);
    out.push(r);
  }
  return out;
}

function numbered(raw: Array<Raw>): JournalRecord[] {
  return realistic(raw).map((r, i): JournalRecord => {
    const seq = i + 1;
    if (r.kind === 'joined')
      return {
        seq,
        kind: 'joined',
        sessionId: r.sessionId,
        name: r.sessionId,
        role: 'agent',
        secretDigest: Buffer.alloc(1),
      };
    if (r.kind === 'left') return { seq, kind: 'left', sessionId: r.sessionId };
    const resource = { program: 'main', function: r.fn };
    if (r.kind === 'dropped') return { seq, kind: 'dropped', sessionId: r.sessionId, resource };
    return {
      seq,
      kind: 'held',
      sessionId: r.sessionId,
      resource,
      mode: r.mode,
      fence: r.fence,
      grantedAt: 0,
      expiresAt: 1,
      ttlMs: r.ttlMs,
      description: undefined,
    };
  });
}

const rowsOf = (batches: JournalRecord[][]): Rows => {
  const rows: Rows = { sessions: new Set(), locks: new Map() };
  for (const b of batches) apply(rows, fold(b));
  return rows;
};

describe('journal batches', () => {
  it('write the same rows one by one, split at any head, or compacted', () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 40 }), fc.nat(), (raw, cut) => {
        const records = numbered(raw);
        const oneByOne = rowsOf(records.map((r) => [r]));
        const head = records.length === 0 ? 0 : cut % (records.length + 1);
        const written = records.filter((r) => r.seq <= head);
        expect(rowsOf([written, records.filter((r) => r.seq > head)])).toEqual(oneByOne);
        expect(rowsOf([written, compact(records).filter((r) => r.seq > head)])).toEqual(oneByOne);
      }),
      { seed: 4242, numRuns: 500 },
    );
  });
});
