import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { KeyReused, LockManager } from '../../src/concurrency/index.ts';
import type { AcquireResult, CycleEntry, Grant, LockEvents, ResourceStatus } from '../../src/concurrency/index.ts';
import { LockstepError } from '../../src/protocol/errors.ts';
import { resourceKey } from '../../src/protocol/resource.ts';
import { expectError } from '../helpers/errors.ts';
import type { LockMode, Resource } from '../../src/protocol/resource.ts';
import { LOCK_EVENT_NAMES } from '../helpers/lock-events.ts';

// Random command sequences against one LockManager, checked after every step against what its
// events announced and against invariants recomputed from status(): mutual exclusion, FIFO,
// no lost wake-up, positions, fences, deadlock refusals, removed sessions, liveness.

const RESOURCES: Resource[] = [
  { program: 'main', structure: true },
  { program: 'main', function: 1 },
  { program: 'main', function: 2 },
  { program: 'aux', function: 1 },
];
const SESSIONS = 4;
const LONGEST_TTL = 30 * 60_000;

type Cmd =
  | {
      kind: 'acquire';
      s: number;
      res: number[];
      mode: LockMode;
      wait: boolean;
      waitTimeoutMs?: number;
      ttlMs?: number;
      key?: string;
    }
  | { kind: 'upgrade'; s: number; extra: number[]; wait: boolean }
  | { kind: 'release'; s: number; res: number[] }
  | { kind: 'releaseAll'; s: number }
  | { kind: 'renew'; s: number; res: number[]; ttlMs?: number }
  | { kind: 'downgrade'; s: number; res: number[] }
  | { kind: 'cancel'; s: number; pick: number; bogus: boolean }
  | { kind: 'advance'; ms: number; late?: boolean }
  | { kind: 'remove'; s: number }
  | { kind: 'withdraw'; s: number };

const session = fc.integer({ min: 0, max: SESSIONS - 1 });
const someResources = fc.array(fc.integer({ min: 0, max: RESOURCES.length - 1 }), { minLength: 1, maxLength: 3 });
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });

const command: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record(
      {
        kind: fc.constant('acquire' as const),
        s: session,
        res: someResources,
        mode: fc.constantFrom<LockMode>('read', 'write'),
        wait: fc.boolean(),
        waitTimeoutMs: opt(fc.constantFrom(0, 50, 300, 1000, 5000)),
        ttlMs: opt(fc.constantFrom(1, 100, 500, 2000, 60_000)),
        key: fc.option(fc.constantFrom('k1', 'k2', 'k3'), { nil: undefined, freq: 3 }),
      },
      { requiredKeys: ['kind', 's', 'res', 'mode', 'wait'] },
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('upgrade' as const),
      s: session,
      extra: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 1 }),
      wait: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), s: session, res: someResources }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('releaseAll' as const), s: session }) },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        kind: fc.constant('renew' as const),
        s: session,
        res: someResources,
        ttlMs: opt(fc.constantFrom(100, 1000, 60_000)),
      },
      { requiredKeys: ['kind', 's', 'res'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('downgrade' as const), s: session, res: someResources }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('cancel' as const), s: session, pick: fc.nat(3), bogus: fc.boolean() }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.constantFrom(1, 10, 50, 100, 400, 1000, 5000, 60_000),
      // A busy event loop: time passes, the timers due meanwhile run late, all at the late time.
      late: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), s: session }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('withdraw' as const), s: session }) },
);

type Snapshot = Map<string, ResourceStatus>;

function snapshot(status: ResourceStatus[]): Snapshot {
  return new Map(status.map((s) => [resourceKey(s.resource), s]));
}

const admits = (st: ResourceStatus | undefined, sid: string, mode: LockMode) =>
  st === undefined || st.holders.every((h) => h.sessionId === sid || (mode === 'read' && h.mode === 'read'));

const conflicts = (holder: { sessionId: string; mode: LockMode }, sid: string, mode: LockMode) =>
  holder.sessionId !== sid && (mode === 'write' || holder.mode === 'write');

/** Session-level wait-for graph with docs/protocol.md's full edges: conflicting holders and every ticket ahead. */
function waitGraph(snap: Snapshot): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>();
  const edge = (a: string, b: string) => {
    if (a !== b) g.set(a, (g.get(a) ?? new Set()).add(b));
  };
  for (const st of snap.values()) {
    st.queue.forEach((q, i) => {
      for (const ahead of st.queue.slice(0, i)) edge(q.sessionId, ahead.sessionId);
      for (const h of st.holders) if (conflicts(h, q.sessionId, q.mode)) edge(q.sessionId, h.sessionId);
    });
  }
  return g;
}

function onCycles(g: Map<string, Set<string>>): Set<string> {
  const out = new Set<string>();
  for (const start of g.keys()) {
    const seen = new Set<string>();
    const frontier = [...(g.get(start) ?? [])];
    while (frontier.length > 0) {
      const v = frontier.pop()!;
      if (v === start) {
        out.add(start);
        break;
      }
      if (seen.has(v)) continue;
      seen.add(v);
      frontier.push(...(g.get(v) ?? []));
    }
  }
  return out;
}

/** docs/protocol.md's rule for "granted at once", recomputed from the state before the request. */
function grantableNow(pre: Snapshot, sid: string, keys: string[], mode: LockMode): string[] {
  return keys.filter((key) => {
    const st = pre.get(key);
    const held = st?.holders.find((h) => h.sessionId === sid);
    if (held !== undefined) return !(held.mode === 'write' || mode === 'read' || st!.holders.length === 1);
    return !(st === undefined || (st.queue.length === 0 && admits(st, sid, mode)));
  });
}

let commandsRun = 0;

class Run {
  readonly clock = new FakeClock(Date.UTC(2025, 0, 1));
  readonly locks = new LockManager({ clock: this.clock, sessionName: (id) => `n:${id}` });
  readonly ids: string[] = Array.from({ length: SESSIONS }, (_, i) => `s${i}`);
  private generation = 0;
  private readonly removed = new Set<string>();
  /** What the events said: positions per ticket, holds per session, and when each ticket queued. */
  private readonly positions = new Map<string, Map<string, number>>();
  private readonly enqueueOrder = new Map<string, number>();
  private readonly timeoutAt = new Map<string, number>();
  private readonly holds = new Map<string, Map<string, { mode: LockMode; fence: number }>>();
  private readonly maxFence = new Map<string, number>();
  private readonly outcomes = new Map<
    string,
    { request: string; result?: AcquireResult; error?: unknown; withdrawn?: string }
  >();
  /** Keyed tickets: a retry of the key learns how the ticket ended. */
  private readonly ticketKeys = new Map<string, string>();
  private stepEvents: Array<{ name: keyof LockEvents; e: { sessionId: string } }> = [];
  private grantedNow: string[] = [];
  private pendingTimeout: number | undefined;

  constructor() {
    for (const name of LOCK_EVENT_NAMES) {
      this.locks.on(name, (e: { sessionId: string }) => {
        if (this.removed.has(e.sessionId)) throw new Error(`${name} event for removed session ${e.sessionId}`);
        this.stepEvents.push({ name, e });
      });
    }
    this.locks.on('queued', (e) => {
      this.positions.set(e.ticket, new Map(e.positions.map((p) => [resourceKey(p.resource), p.position])));
      this.enqueueOrder.set(e.ticket, this.enqueueOrder.size);
      if (this.pendingTimeout !== undefined) this.timeoutAt.set(e.ticket, this.clock.now() + this.pendingTimeout);
    });
    this.locks.on('position', (e) => {
      const known = this.positions.get(e.ticket);
      if (known === undefined) throw new Error(`position for unknown ticket ${e.ticket}`);
      const next = new Map(e.positions.map((p) => [resourceKey(p.resource), p.position]));
      if ([...next].every(([k, p]) => known.get(k) === p))
        throw new Error(`position event without a change for ${e.ticket}`);
      this.positions.set(e.ticket, next);
    });
    this.locks.on('granted', (e) => {
      if (e.ticket !== null) {
        if (!this.positions.delete(e.ticket)) throw new Error(`grant of unknown ticket ${e.ticket}`);
        this.grantedNow.push(e.ticket);
        const key = this.ticketKeys.get(e.ticket);
        const known = key === undefined ? undefined : this.outcomes.get(key);
        if (key !== undefined && known !== undefined)
          this.outcomes.set(key, { request: known.request, result: { status: 'granted', grants: e.grants } });
      }
      const mine = this.holdsOf(e.sessionId);
      for (const g of e.grants) {
        const key = resourceKey(g.resource);
        const prior = mine.get(key);
        if (prior !== undefined && prior.fence === g.fence) {
          if (prior.mode !== g.mode)
            throw new Error(`mode changed from ${prior.mode} to ${g.mode} without a new fence`);
        } else {
          const max = this.maxFence.get(g.resource.program) ?? 0;
          if (g.fence <= max) throw new Error(`fence ${g.fence} not above ${max} in ${g.resource.program}`);
          this.maxFence.set(g.resource.program, g.fence);
        }
        mine.set(key, { mode: g.mode, fence: g.fence });
      }
    });
    this.locks.on('released', (e) => {
      const mine = this.holdsOf(e.sessionId);
      for (const g of e.locks)
        if (!mine.delete(resourceKey(g.resource))) throw new Error('released a lock never granted');
    });
    this.locks.on('downgraded', (e) => {
      for (const g of e.locks) {
        const h = this.holdsOf(e.sessionId).get(resourceKey(g.resource));
        if (h?.fence !== g.fence || g.mode !== 'read') throw new Error('downgrade changed the fence or kept write');
        h.mode = 'read';
      }
    });
    this.locks.on('renewed', (e) => {
      for (const g of e.locks) {
        if (this.holdsOf(e.sessionId).get(resourceKey(g.resource))?.fence !== g.fence)
          throw new Error('renew changed the fence');
      }
    });
    this.locks.on('cancelled', (e) => {
      if (!this.positions.delete(e.ticket)) throw new Error(`cancel of unknown ticket ${e.ticket}`);
      const key = this.ticketKeys.get(e.ticket);
      const known = key === undefined ? undefined : this.outcomes.get(key);
      if (key === undefined || known === undefined) return;
      if (e.reason === 'disconnect') this.outcomes.delete(key);
      else this.outcomes.set(key, { request: known.request, withdrawn: e.reason });
    });
  }

  private holdsOf(sid: string): Map<string, { mode: LockMode; fence: number }> {
    let m = this.holds.get(sid);
    if (m === undefined) {
      m = new Map();
      this.holds.set(sid, m);
    }
    return m;
  }

  step(cmd: Cmd): void {
    commandsRun++;
    const pre = snapshot(this.locks.status());
    const preCycles = onCycles(waitGraph(pre));
    this.stepEvents = [];
    this.grantedNow = [];
    this.pendingTimeout = undefined;
    this.execute(cmd, pre, preCycles);
    this.check(pre, cmd.kind === 'advance');
  }

  private execute(cmd: Cmd, pre: Snapshot, preCycles: Set<string>): void {
    const { locks } = this;
    if (cmd.kind === 'advance') {
      if (cmd.late === true) this.clock.jump(cmd.ms);
      this.clock.advance(cmd.late === true ? 0 : cmd.ms);
      return;
    }
    const sid = this.ids[cmd.s]!;
    const res = 'res' in cmd ? cmd.res.map((i) => RESOURCES[i]!) : [];
    switch (cmd.kind) {
      case 'acquire':
        this.acquire(sid, pre, preCycles, {
          resources: res,
          mode: cmd.mode,
          wait: cmd.wait,
          waitTimeoutMs: cmd.waitTimeoutMs,
          ttlMs: cmd.ttlMs,
          key: cmd.key,
        });
        return;
      case 'upgrade': {
        const read = locks.holding(sid).find((g) => g.mode === 'read');
        const target = read?.resource ?? RESOURCES[cmd.s]!;
        this.acquire(sid, pre, preCycles, {
          resources: [target, ...cmd.extra.map((i) => RESOURCES[i]!)],
          mode: 'write',
          wait: cmd.wait,
        });
        return;
      }
      case 'release':
      case 'renew':
      case 'downgrade': {
        const missing = [...new Set(res.map(resourceKey))].filter(
          (k) => !pre.get(k)?.holders.some((h) => h.sessionId === sid),
        );
        const run = () =>
          cmd.kind === 'release'
            ? locks.release(sid, res)
            : cmd.kind === 'renew'
              ? locks.renew(sid, res, cmd.ttlMs)
              : locks.downgrade(sid, res);
        if (missing.length > 0) {
          const err = expectError(run, 'NOT_HELD');
          expect((err.details.resources as Resource[]).map(resourceKey).sort()).toEqual(missing.sort());
          this.expectUnchanged(pre);
        } else {
          const out = run();
          expect(out.map((g) => resourceKey(g.resource)).sort()).toEqual([...new Set(res.map(resourceKey))].sort());
        }
        return;
      }
      case 'releaseAll':
        locks.releaseAll(sid);
        return;
      case 'cancel': {
        const mine = locks.tickets(sid);
        if (cmd.bogus || mine.length === 0) {
          expectError(() => locks.cancel(sid, cmd.bogus ? 'bogus' : 'none'), 'NOT_FOUND');
          this.expectUnchanged(pre);
          // A ticket of another session cannot be cancelled either.
          const other = this.ids.flatMap((id) => (id === sid ? [] : locks.tickets(id)))[0];
          if (other !== undefined) expectError(() => locks.cancel(sid, other.ticket), 'NOT_FOUND');
        } else {
          locks.cancel(sid, mine[cmd.pick % mine.length]!.ticket);
        }
        return;
      }
      case 'withdraw':
        locks.withdrawTickets(sid);
        expect(locks.tickets(sid)).toEqual([]);
        return;
      case 'remove': {
        locks.removeSession(sid);
        this.removed.add(sid);
        for (const key of this.outcomes.keys()) if (key.startsWith(`${sid}|`)) this.outcomes.delete(key);
        expect(this.holds.get(sid)?.size ?? 0).toBe(0);
        this.ids[cmd.s] = `s${cmd.s}.${++this.generation}`;
        return;
      }
    }
  }

  private acquire(
    sid: string,
    pre: Snapshot,
    preCycles: Set<string>,
    req: { resources: Resource[]; mode: LockMode; wait: boolean; waitTimeoutMs?: number; ttlMs?: number; key?: string },
  ): void {
    const request = `${req.mode}|${req.wait}|${[...new Set(req.resources.map(resourceKey))].sort().join(',')}`;
    const replay = req.key === undefined ? undefined : this.outcomes.get(`${sid}|${req.key}`);
    if (replay !== undefined) {
      if (replay.request !== request) {
        let thrown: unknown;
        try {
          this.locks.acquire(sid, req);
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBeInstanceOf(KeyReused);
      } else if (replay.withdrawn !== undefined) {
        const err = expectError(() => this.locks.acquire(sid, req), 'NOT_FOUND');
        expect(err.details.reason).toBe(replay.withdrawn);
      } else if (replay.error !== undefined) {
        let thrown: unknown;
        try {
          this.locks.acquire(sid, req);
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBe(replay.error);
      } else if (replay.result?.status === 'queued') {
        // Still waiting: the answer says where the ticket stands now.
        const { ticket } = replay.result;
        const now = this.positions.get(ticket)!;
        expect(this.locks.acquire(sid, req)).toEqual({
          status: 'queued',
          ticket,
          positions: replay.result.positions.map((p) => ({
            resource: p.resource,
            position: now.get(resourceKey(p.resource)),
          })),
        });
      } else {
        expect(this.locks.acquire(sid, req)).toEqual(replay.result);
      }
      expect(this.stepEvents).toEqual([]);
      this.expectUnchanged(pre);
      return;
    }
    const keys = [...new Set(req.resources.map(resourceKey))];
    const blocked = grantableNow(pre, sid, keys, req.mode);
    this.pendingTimeout = req.wait ? req.waitTimeoutMs : undefined;
    let result: AcquireResult;
    try {
      result = this.locks.acquire(sid, req);
    } catch (err) {
      if (!(err instanceof LockstepError)) throw err;
      if (req.key !== undefined) this.outcomes.set(`${sid}|${req.key}`, { request, error: err });
      this.expectUnchanged(pre);
      if (err.type === 'LOCK_DENIED') {
        expect(req.wait).toBe(false);
        expect(blocked.length).toBeGreaterThan(0);
        const blockers = err.details.blockers as Array<{ resource: Resource; holders: Array<{ expiresAt: number }> }>;
        expect(blockers.map((b) => resourceKey(b.resource)).sort()).toEqual([...blocked].sort());
        const ends = blockers.flatMap((b) => b.holders.map((h) => h.expiresAt));
        expect(err.retryAfterMs).toBe(ends.length === 0 ? undefined : Math.ceil(Math.min(...ends) - this.clock.now()));
      } else if (blocked.length === 0) {
        // An immediate upgrade refused: granting it would have put this session on a cycle, its
        // queued readers now waiting for it while it waits for them.
        expect(err.type).toBe('DEADLOCK');
        expect(req.mode).toBe('write');
        const g = waitGraph(pre);
        for (const key of keys) {
          const st = pre.get(key);
          if (st?.holders.some((h) => h.sessionId === sid && h.mode === 'read') !== true) continue;
          for (const q of st.queue)
            if (q.sessionId !== sid) g.set(q.sessionId, (g.get(q.sessionId) ?? new Set()).add(sid));
        }
        expect(onCycles(g).has(sid), 'a refused upgrade must close a cycle').toBe(true);
      } else {
        expect(err.type).toBe('DEADLOCK');
        expect(req.wait).toBe(true);
        this.expectRealCycle(pre, sid, keys, req.mode, err.details.cycle as CycleEntry[]);
      }
      return;
    }
    if (req.key !== undefined) {
      this.outcomes.set(`${sid}|${req.key}`, { request, result });
      if (result.status === 'queued') this.ticketKeys.set(result.ticket, `${sid}|${req.key}`);
    }
    if (blocked.length === 0) {
      expect(result.status).toBe('granted');
    } else {
      expect(req.wait).toBe(true);
      expect(result.status).toBe('queued');
    }
    // Nobody may end up on a wait-for cycle they were not on before: neither a new wait nor a
    // grant (an upgrade that makes queued readers wait) closed one.
    const after = onCycles(waitGraph(snapshot(this.locks.status())));
    for (const s of after) expect(preCycles.has(s), `new wait-for cycle through ${s}`).toBe(true);
  }

  /** Each step of a DEADLOCK cycle is a real wait in the state plus the refused ticket. */
  private expectRealCycle(pre: Snapshot, sid: string, keys: string[], mode: LockMode, cycle: CycleEntry[]): void {
    expect(cycle.length).toBeGreaterThanOrEqual(2);
    const queueWith = (key: string) => {
      const st = pre.get(key);
      const queue: Array<{ ticket: string; sessionId: string; mode: LockMode }> = [...(st?.queue ?? [])];
      if (keys.includes(key)) {
        const front =
          (st?.holders.some((h) => h.sessionId === sid) ?? false) &&
          !(st?.queue.some((q) => !q.front && q.sessionId === sid) ?? false);
        const at = front ? (st?.queue.filter((q) => q.front).length ?? 0) : queue.length;
        queue.splice(at, 0, { ticket: 'NEW', sessionId: sid, mode });
      }
      return queue;
    };
    cycle.forEach((c, i) => {
      const next = cycle[(i + 1) % cycle.length]!.sessionId;
      const key = resourceKey(c.resource!);
      const ticket = c.ticket ?? 'NEW';
      if (c.ticket === undefined) expect(c.sessionId).toBe(sid);
      const queue = queueWith(key);
      const at = queue.findIndex((q) => q.ticket === ticket);
      expect(at).toBeGreaterThanOrEqual(0);
      const waiter = queue[at]!;
      const byHolder = (pre.get(key)?.holders ?? []).some(
        (h) => h.sessionId === next && conflicts(h, c.sessionId, waiter.mode),
      );
      const byAhead = queue.slice(0, at).some((q) => q.sessionId === next);
      expect(byHolder || byAhead, `cycle step ${c.sessionId} -> ${next} on ${key} is not a wait`).toBe(true);
    });
  }

  private expectUnchanged(pre: Snapshot): void {
    expect(snapshot(this.locks.status())).toEqual(pre);
  }

  /** Invariants of the state after every step. */
  check(pre: Snapshot, advanced: boolean): void {
    const now = this.clock.now();
    const status = this.locks.status();
    const snap = snapshot(status);
    const waiting = new Set(status.flatMap((s) => s.queue.map((q) => q.ticket)));
    let pairs = 0;
    for (const st of status) {
      const key = resourceKey(st.resource);
      expect(st.holders.length + st.queue.length).toBeGreaterThan(0);
      // Mutual exclusion.
      if (st.holders.some((h) => h.mode === 'write')) expect(st.holders).toHaveLength(1);
      for (const h of st.holders) {
        expect(h.expiresAt, 'a lease outlived its expiry').toBeGreaterThan(now);
        expect(this.removed.has(h.sessionId)).toBe(false);
      }
      // FIFO: the front section (holders upgrading or extending) first, each section in enqueue order.
      const fronts = st.queue.filter((q) => q.front);
      expect(st.queue.slice(0, fronts.length)).toEqual(fronts);
      for (const section of [fronts, st.queue.filter((q) => !q.front)]) {
        const order = section.map((q) => this.enqueueOrder.get(q.ticket)!);
        expect(order).toEqual([...order].sort((a, b) => a - b));
      }
      for (const q of st.queue) {
        expect(this.removed.has(q.sessionId)).toBe(false);
        // Positions as announced.
        expect(this.positions.get(q.ticket)?.get(key), `announced position of ${q.ticket} on ${key}`).toBe(q.position);
        pairs++;
        const deadline = this.timeoutAt.get(q.ticket);
        // A timeout of 0 set by this very step fires at the next clock tick.
        if (deadline !== undefined && (advanced || deadline < now))
          expect(deadline, 'a ticket outlived its wait timeout').toBeGreaterThan(now);
      }
      // No lost wake-up: the front ticket must not be grantable.
      const front = st.queue[0];
      if (front !== undefined) {
        const all = status.filter((s) => s.queue.some((q) => q.ticket === front.ticket));
        const ready = all.every((s) => s.queue[0]!.ticket === front.ticket && admits(s, front.sessionId, front.mode));
        expect(ready, `ticket ${front.ticket} could run but still waits`).toBe(false);
      }
    }
    // No two tickets each ahead of the other, directly or through others: that wait would never end.
    const behindOf = new Map<string, Set<string>>();
    for (const st of status) {
      st.queue.forEach((q, i) => {
        for (const ahead of st.queue.slice(0, i))
          behindOf.set(q.ticket, (behindOf.get(q.ticket) ?? new Set()).add(ahead.ticket));
      });
    }
    expect(onCycles(behindOf).size, 'tickets waiting for each other in queue order').toBe(0);
    expect(pairs).toBe([...this.positions.values()].reduce((n, m) => n + m.size, 0));
    // FIFO grant order: nobody granted while a ticket that was ahead of it still waits.
    for (const t of this.grantedNow) {
      for (const st of pre.values()) {
        const at = st.queue.findIndex((q) => q.ticket === t);
        for (const ahead of st.queue.slice(0, Math.max(0, at))) {
          expect(waiting.has(ahead.ticket), `${t} granted before ${ahead.ticket}`).toBe(false);
        }
      }
    }
    // What the events said matches the state.
    for (const [sid, mine] of this.holds) {
      const actual = new Map(
        this.locks.holding(sid).map((g: Grant) => [resourceKey(g.resource), { mode: g.mode, fence: g.fence }]),
      );
      expect(actual).toEqual(mine);
    }
    for (const sid of this.removed) {
      expect(this.locks.holding(sid)).toEqual([]);
      expect(this.locks.tickets(sid)).toEqual([]);
    }
    for (const sid of this.ids) {
      for (const t of this.locks.tickets(sid)) {
        expect(t.positions.map((p) => p.position)).toEqual(
          t.positions.map((p) => snap.get(resourceKey(p.resource))!.queue.find((q) => q.ticket === t.ticket)!.position),
        );
      }
    }
    // Timers: at most a lease and a warning per lock, plus wait timeouts; none for anyone gone.
    const holdCount = status.reduce((n, s) => n + s.holders.length, 0);
    const timeouts = [...waiting].filter((t) => this.timeoutAt.has(t)).length;
    expect(this.locks.scheduled).toBeGreaterThanOrEqual(holdCount + timeouts);
    expect(this.locks.scheduled).toBeLessThanOrEqual(2 * holdCount + timeouts);
    expect(this.clock.pending()).toBe(this.locks.scheduled > 0 ? 1 : 0);
  }

  /** Liveness: with no new requests, leases ending one after another let every waiting ticket through. */
  drain(): void {
    for (let round = 0; this.ids.some((id) => this.locks.tickets(id).length > 0); round++) {
      expect(round, 'waiting tickets never got through').toBeLessThan(100);
      this.step({ kind: 'advance', ms: LONGEST_TTL + 1 });
    }
    this.step({ kind: 'advance', ms: LONGEST_TTL + 1 });
    expect(this.locks.status()).toEqual([]);
    expect(this.locks.scheduled).toBe(0);
    expect(this.clock.pending()).toBe(0);
  }
}

// Bounded by runs, never by wall-clock: the default is a fixed seed and a run count that finishes
// in seconds even on a loaded machine, with a timeout far above that. `npm run soak` runs many
// more with a random seed (LOCK_MODEL_SEED=random); any seed it reports reruns as LOCK_MODEL_SEED.
const FIXED_SEED = 20_261_202;
const SEED = process.env.LOCK_MODEL_SEED ?? String(FIXED_SEED);

describe('LockManager against its model', () => {
  const numRuns = Number(process.env.LOCK_MODEL_RUNS ?? 100);

  afterAll(() => {
    expect(commandsRun).toBeGreaterThanOrEqual(numRuns * 50);
  });

  it('keeps every invariant over random command sequences', { timeout: Math.max(120_000, numRuns * 600) }, () => {
    const seed = SEED === 'random' ? undefined : Number(SEED);
    fc.assert(
      fc.property(fc.array(command, { minLength: 50, maxLength: 60 }), (cmds) => {
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
      // On failure fast-check prints the seed, path and shrunk counterexample; rerun one with
      // LOCK_MODEL_SEED. Verbose would also list every failure met while shrinking: pages of noise.
      { numRuns, verbose: fc.VerbosityLevel.None, ...(seed === undefined ? {} : { seed }) },
    );
  });
});
