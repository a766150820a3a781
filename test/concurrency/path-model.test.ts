import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { LockManager } from '../../src/concurrency/index.ts';
import { LockstepError } from '../../src/protocol/errors.ts';
import type { LockMode, Resource } from '../../src/protocol/resource.ts';

// Path locks (docs/protocol.md, "Paths") against a plain reference model, over random command
// sequences: the model knows nothing of intention locks or slots, only paths, modes and the order
// requests came in. After every step: every pair of held locks is compatible by the plain
// hierarchical rule; nobody was granted past a waiting request it conflicts with that was ahead
// of it; every position reported is the model's; no waiter could run; a removed session leaves
// nothing behind. A function of the same program rides along in batches.

const PATHS = ['a', 'a/b', 'a/b/c', 'a/bc', 'd'];
const FN = 'f1';
const RESOURCES: Resource[] = [...PATHS.map((path) => ({ program: 'repo', path })), { program: 'repo', function: 1 }];
const nameOf = (r: Resource) => ('path' in r ? r.path : FN);
const SESSIONS = 4;

/** The plain rule: one path on or below the other, by whole segments (the function only with itself). */
const related = (x: string, y: string) => x === y || x.startsWith(`${y}/`) || y.startsWith(`${x}/`);
const conflicts = (m: LockMode, n: LockMode) => m === 'write' || n === 'write';
const above = (p: string) => {
  const out: string[] = [];
  for (let at = p.lastIndexOf('/'); at > 0; at = p.lastIndexOf('/', at - 1)) out.push(p.slice(0, at));
  return out;
};
/** The paths where a request on these paths queues: each one and every path above it. */
const placesOf = (paths: string[]) => new Set(paths.flatMap((p) => [p, ...above(p)]));

interface ModelTicket {
  id: string;
  session: string;
  mode: LockMode;
  paths: string[];
  seq: number;
  /** The places where it waits in the front section (its session held a related lock when it queued). */
  front: Set<string>;
}

type Cmd =
  | { kind: 'acquire'; s: number; res: number[]; mode: LockMode; wait: boolean; ttl: number }
  | { kind: 'upgrade'; s: number; wait: boolean }
  | { kind: 'release'; s: number; pick: number }
  | { kind: 'downgrade'; s: number; pick: number }
  | { kind: 'cancel'; s: number; pick: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'remove'; s: number };

const s = fc.integer({ min: 0, max: SESSIONS - 1 });
const command: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('acquire' as const),
      s,
      res: fc.array(fc.integer({ min: 0, max: RESOURCES.length - 1 }), { minLength: 1, maxLength: 2 }),
      mode: fc.constantFrom<LockMode>('read', 'write'),
      wait: fc.boolean(),
      ttl: fc.constantFrom(500, 2_000, 60_000),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('upgrade' as const), s, wait: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), s, pick: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('downgrade' as const), s, pick: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), s, pick: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(10, 600, 2_500) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), s }) },
);

class Run {
  readonly clock = new FakeClock(Date.UTC(2026, 0, 1));
  readonly locks = new LockManager({ clock: this.clock });
  readonly ids = Array.from({ length: SESSIONS }, (_, i) => `s${i}`);
  private generation = 0;
  private seq = 0;
  private readonly removed = new Set<string>();
  /** What the events said. */
  readonly holds = new Map<string, Map<string, LockMode>>();
  readonly tickets = new Map<string, ModelTicket>();
  readonly told = new Map<string, Map<string, number>>();
  private granted: Array<{ session: string; ticket: string | null; paths: string[]; mode: LockMode }> = [];
  /** Set just before an acquire: how the model places a ticket it queues. */
  private placing: { front: Set<string>; seq: number } | undefined;

  constructor() {
    const l = this.locks;
    for (const name of ['granted', 'released', 'queued', 'position', 'cancelled', 'downgraded'] as const) {
      l.on(name, (e: { sessionId: string }) => {
        if (this.removed.has(e.sessionId)) throw new Error(`${name} for removed session ${e.sessionId}`);
      });
    }
    l.on('queued', (e) => {
      const paths = e.resources.map(nameOf);
      const { front, seq } = this.placing!;
      this.tickets.set(e.ticket, { id: e.ticket, session: e.sessionId, mode: e.mode, paths, seq, front });
      this.told.set(e.ticket, new Map(e.positions.map((p) => [nameOf(p.resource), p.position])));
    });
    l.on('position', (e) => this.told.set(e.ticket, new Map(e.positions.map((p) => [nameOf(p.resource), p.position]))));
    l.on('granted', (e) => {
      const mine = this.holdsOf(e.sessionId);
      for (const g of e.grants) mine.set(nameOf(g.resource), g.mode);
      if (e.ticket !== null) {
        const t = this.tickets.get(e.ticket)!;
        this.tickets.delete(e.ticket);
        this.told.delete(e.ticket);
        this.granted.push({ session: t.session, ticket: t.id, paths: t.paths, mode: t.mode });
      }
    });
    l.on('released', (e) => {
      for (const g of e.locks) this.holdsOf(e.sessionId).delete(nameOf(g.resource));
    });
    l.on('downgraded', (e) => {
      for (const g of e.locks) this.holdsOf(e.sessionId).set(nameOf(g.resource), 'read');
    });
    l.on('cancelled', (e) => {
      this.tickets.delete(e.ticket);
      this.told.delete(e.ticket);
    });
  }

  private holdsOf(id: string): Map<string, LockMode> {
    let m = this.holds.get(id);
    if (m === undefined) {
      m = new Map();
      this.holds.set(id, m);
    }
    return m;
  }

  /** Where a new ticket of `session` on `paths` waits in the front section, as docs/protocol.md says. */
  private frontOf(session: string, paths: string[]): Set<string> {
    const held = [...this.holdsOf(session).keys()];
    const front = new Set<string>();
    for (const place of placesOf(paths)) {
      const holds = held.some((h) => related(h, place));
      const behind = [...this.tickets.values()].some(
        (t) => t.session === session && placesOf(t.paths).has(place) && !t.front.has(place),
      );
      if (holds && !behind) front.add(place);
    }
    return front;
  }

  /** Whether `u` is ahead of `t` at `place`: the front section first, each section in arrival order. */
  private ahead(u: ModelTicket, t: ModelTicket, place: string): boolean {
    const fu = u.front.has(place);
    const ft = t.front.has(place);
    return fu !== ft ? fu : u.seq < t.seq;
  }

  /**
   * The tickets `t` waits behind on its path `p`: each one ahead of it, on a path related to one
   * of its own, that it conflicts with (for one and the same path, any), where the two meet (the
   * shorter path) being `p` or a path above it.
   */
  blockersOf(t: ModelTicket, p?: string): Set<string> {
    const out = new Set<string>();
    const chain = p === undefined ? undefined : new Set([p, ...above(p)]);
    for (const u of this.tickets.values()) {
      if (u === t) continue;
      for (const pu of u.paths) {
        for (const pt of t.paths) {
          if (!related(pu, pt) || (pu !== pt && !conflicts(u.mode, t.mode))) continue;
          const meet = pu.length <= pt.length ? pu : pt;
          if (chain !== undefined && !chain.has(meet)) continue;
          if (this.ahead(u, t, meet)) out.add(u.id);
        }
      }
    }
    return out;
  }

  /** Other sessions' locks that conflict with `mode` on one of `paths`. */
  conflictingHolds(session: string, paths: string[], mode: LockMode): string[] {
    const out: string[] = [];
    for (const [id, mine] of this.holds) {
      if (id === session) continue;
      for (const [h, m] of mine) if (paths.some((p) => related(h, p)) && conflicts(m, mode)) out.push(`${id}:${h}`);
    }
    return out;
  }

  step(cmd: Cmd): void {
    this.granted = [];
    const before = new Map(this.tickets);
    let immediate: { session: string; paths: string[]; mode: LockMode; front: Set<string> } | undefined;
    if (cmd.kind === 'advance') {
      this.clock.advance(cmd.ms);
    } else {
      const sid = this.ids[cmd.s]!;
      const mine = [...this.holdsOf(sid).entries()].sort();
      const res = (paths: string[]) => paths.map((p) => RESOURCES.find((r) => nameOf(r) === p)!);
      const attempt = (paths: string[], mode: LockMode, wait: boolean, ttlMs?: number) => {
        const front = this.frontOf(sid, paths);
        this.placing = { front, seq: this.seq++ };
        // A lock held already is refreshed or upgraded in place, past the queue as on a function.
        const held = paths.some((p) => this.holdsOf(sid).has(p));
        try {
          const r = this.locks.acquire(sid, { resources: res(paths), mode, wait, ...(ttlMs ? { ttlMs } : {}) });
          if (r.status === 'granted' && !held) immediate = { session: sid, paths, mode, front };
        } catch (err) {
          if (!(err instanceof LockstepError)) throw err;
          expect(['LOCK_DENIED', 'DEADLOCK']).toContain(err.type);
        }
      };
      switch (cmd.kind) {
        case 'acquire':
          attempt([...new Set(cmd.res.map((i) => nameOf(RESOURCES[i]!)))], cmd.mode, cmd.wait, cmd.ttl);
          break;
        case 'upgrade': {
          const read = mine.find(([, m]) => m === 'read');
          if (read !== undefined) attempt([read[0]], 'write', cmd.wait);
          break;
        }
        case 'release':
          if (mine.length > 0) this.locks.release(sid, res([mine[cmd.pick % mine.length]![0]]));
          break;
        case 'downgrade':
          if (mine.length > 0) this.locks.downgrade(sid, res([mine[cmd.pick % mine.length]![0]]));
          break;
        case 'cancel': {
          const waiting = [...this.tickets.values()].filter((t) => t.session === sid);
          if (waiting.length > 0) this.locks.cancel(sid, waiting[cmd.pick % waiting.length]!.id);
          break;
        }
        case 'remove':
          this.locks.removeSession(sid);
          this.removed.add(sid);
          this.holds.delete(sid);
          expect([...this.tickets.values()].some((t) => t.session === sid)).toBe(false);
          this.ids[cmd.s] = `s${cmd.s}.${++this.generation}`;
          break;
      }
    }
    this.check(before, immediate);
  }

  check(
    before: Map<string, ModelTicket>,
    immediate: { session: string; paths: string[]; mode: LockMode; front: Set<string> } | undefined,
  ): void {
    // Every pair of held locks compatible by the plain rule.
    const all = [...this.holds].flatMap(([id, mine]) => [...mine].map(([p, m]) => ({ id, p, m })));
    for (const x of all) {
      for (const y of all) {
        if (x.id !== y.id && related(x.p, y.p)) {
          expect(conflicts(x.m, y.m), `${x.id} ${x.m} ${x.p} with ${y.id} ${y.m} ${y.p}`).toBe(false);
        }
      }
    }
    // What the events said is the state.
    for (const [id, mine] of this.holds) {
      const actual = new Map(this.locks.holding(id).map((g) => [nameOf(g.resource), g.mode]));
      expect(actual).toEqual(mine);
    }
    // Nobody granted past a conflicting request still waiting that was ahead of it.
    const grants = [...this.granted.map((g) => ({ ...g, t: before.get(g.ticket!)! }))];
    for (const g of grants) {
      const blockers = this.blockersOf(g.t);
      for (const b of blockers) expect(this.tickets.has(b), `${g.ticket} granted before ${b}`).toBe(false);
    }
    if (immediate !== undefined) {
      const probe: ModelTicket = {
        id: 'NEW',
        session: immediate.session,
        mode: immediate.mode,
        paths: immediate.paths,
        seq: Number.POSITIVE_INFINITY,
        front: immediate.front,
      };
      for (const b of this.blockersOf(probe)) expect(this.tickets.has(b), `granted at once past ${b}`).toBe(false);
    }
    // Positions: the model's, in status, in the ticket list and as last told; nobody could run.
    const status = new Map(this.locks.status('repo').map((st) => [nameOf(st.resource), st]));
    for (const t of this.tickets.values()) {
      const listed = this.locks.tickets(t.session).find((x) => x.ticket === t.id)!;
      for (const p of t.paths) {
        const model = this.blockersOf(t, p).size + 1;
        expect(
          status.get(p)!.queue.find((q) => q.ticket === t.id)!.position,
          `status position of ${t.id} on ${p}`,
        ).toBe(model);
        expect(listed.positions.find((x) => nameOf(x.resource) === p)!.position).toBe(model);
        expect(this.told.get(t.id)!.get(p), `told position of ${t.id} on ${p}`).toBe(model);
      }
      const waits = this.blockersOf(t).size > 0 || this.conflictingHolds(t.session, t.paths, t.mode).length > 0;
      expect(waits, `${t.id} could run but waits`).toBe(true);
    }
    for (const id of this.removed) {
      expect(this.locks.holding(id)).toEqual([]);
      expect(this.locks.tickets(id)).toEqual([]);
    }
  }

  /** Leases ending one after another let every waiter through; then nothing is left. */
  drain(): void {
    for (let round = 0; this.tickets.size > 0; round++) {
      expect(round, 'waiting tickets never got through').toBeLessThan(100);
      this.step({ kind: 'advance', ms: 30 * 60_000 + 1 });
    }
    this.step({ kind: 'advance', ms: 30 * 60_000 + 1 });
    expect(this.locks.status()).toEqual([]);
    expect(this.locks.scheduled).toBe(0);
  }
}

const SEED = process.env.LOCK_MODEL_SEED ?? '20261207';

describe('path locks against a plain model', () => {
  const numRuns = Number(process.env.LOCK_MODEL_RUNS ?? 100);

  it('keeps every invariant over random command sequences', { timeout: Math.max(120_000, numRuns * 600) }, () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 40, maxLength: 50 }), (cmds) => {
        const run = new Run();
        cmds.forEach((cmd, i) => {
          try {
            run.step(cmd);
          } catch (err) {
            (err as Error).message = `step ${i} ${JSON.stringify(cmd)}: ${(err as Error).message}`;
            throw err;
          }
        });
        run.drain();
      }),
      { numRuns, verbose: fc.VerbosityLevel.None, ...(SEED === 'random' ? {} : { seed: Number(SEED) }) },
    );
  });
});
