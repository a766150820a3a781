import { describe, expect, it } from 'vitest';
import type { AuditRow } from './workload-audit.ts';
import { check, type History, PROGRESS_BOUND_MS } from './workload-checks.ts';
import type { FaultNote } from './workload-faults.ts';
import { type AgentLog, type EditRecord, type Hold, newLog } from './workload-log.ts';

// The workload's checks on small made-up histories: a clean one passes, and each guarantee the
// workload claims to check is caught when a history breaks it. Without this, a check that can
// never fail would pass the workload just the same.

const URL_A = 'ws://127.0.0.1:1/ws';

function edit(agent: number, seq: number, fence: number, revision: number, sentAt: number): EditRecord {
  return {
    agent,
    seq,
    nodeId: agent * 1_000_000 + seq,
    fn: 1,
    fence,
    sessionId: `s${agent}`,
    key: `agent-${agent}-edit-${seq}`,
    blind: false,
    sentAt,
    answeredAt: sentAt + 5,
    answeredBy: URL_A,
    outcome: { kind: 'ok', result: { revision } },
    attempts: 1,
    refusals: [],
  };
}

const audit = (id: number, tbl: AuditRow['tbl'], data: any, at: number, extra: Partial<AuditRow> = {}): AuditRow => ({
  id,
  tbl,
  op: 'INSERT',
  data,
  epoch: 2,
  url: URL_A,
  byHolder: true,
  at,
  ...extra,
});

/** A write lock on function 1 as agent `agent` was told of it, released at `to`, its lease 5 s. */
function hold(agent: number, fence: number, from: number, to: number, extra: Partial<Hold> = {}): Hold {
  return {
    agent,
    view: 'protocol',
    sessionId: `s${agent}`,
    fn: 1,
    mode: 'write',
    fence,
    from,
    to,
    end: 'released',
    leaseEnd: from + 5_000,
    lastUse: 0,
    suspended: 0,
    restored: 0,
    ...extra,
  };
}

/** Two agents edit function 1 in turn under fences 10 and 11, on the leader of epoch 2. */
function clean(): { log: AgentLog; history: History; faults: FaultNote[] } {
  const log = newLog();
  log.startedAt = 0;
  const a = edit(0, 1, 10, 1, 950);
  const b = edit(1, 1, 11, 2, 1_550);
  log.edits.push(a, b);
  log.holds.push(hold(0, 10, 900, 960, { lastUse: 950 }), hold(1, 11, 1_500, 1_560, { lastUse: 1_550 }));
  log.progress.push({ agent: 0, at: 970 }, { agent: 1, at: 1_570 });
  const revision = (e: EditRecord, r: number) => ({
    revision: r,
    sessionId: e.sessionId,
    key: e.key,
    ops: [{ op: 'addNode', function: 1, node: { id: e.nodeId } }],
  });
  const history: History = {
    revisions: [revision(a, 1), revision(b, 2)],
    audit: [
      audit(1, 'lockstep_lease', { epoch: 2 }, 500),
      audit(2, 'cluster_locks', { session_id: 's0', resource: '1', fence: 10, mode: 'write', granted_at: 900 }, 910),
      audit(3, 'revisions', { revision: 1 }, 955),
      audit(
        4,
        'cluster_locks',
        { session_id: 's1', resource: '1', fence: 11, mode: 'write', granted_at: 1_500 },
        1_510,
      ),
      audit(5, 'revisions', { revision: 2 }, 1_555),
    ],
    finalNodes: new Map([[1, [a.nodeId, b.nodeId]]]),
    setupRevision: 0,
  };
  return { log, history, faults: [{ kind: 'kill-leader', startedAt: 0, healedAt: 800, detail: '' }] };
}

const violations = (h: ReturnType<typeof clean>) => check(h.log, h.history, h.faults).violations;

describe('the cluster workload checks', () => {
  it('find nothing wrong in a clean history', () => {
    expect(violations(clean())).toEqual([]);
  });

  it('catch an acknowledged edit that is missing, and one applied twice', () => {
    const missing = clean();
    missing.history.revisions.pop();
    missing.history.finalNodes.set(1, [missing.log.edits[0]!.nodeId]);
    expect(violations(missing).join('\n')).toMatch(/acknowledged as revision 2, added in \[\]/);

    const twice = clean();
    twice.history.revisions.push({ ...twice.history.revisions[0]!, revision: 3 });
    twice.history.audit.push(audit(6, 'revisions', { revision: 3 }, 2_000));
    expect(violations(twice).join('\n')).toMatch(/applied in revisions \[1,3\]/);
  });

  it('catch a refused edit that was applied', () => {
    const h = clean();
    h.log.edits[1]!.outcome = { kind: 'error', type: 'STALE_FENCE', code: 409, data: undefined };
    expect(violations(h).join('\n')).toMatch(/refused \(STALE_FENCE\) but added in \[2\]/);
  });

  it('catch fences that go down in revision order', () => {
    const h = clean();
    h.log.edits[1]!.fence = 9;
    h.log.holds[1]!.fence = 9;
    expect(violations(h).join('\n')).toMatch(/revision 2 under fence 9 after revision 1 under 10/);
  });

  it('catch a write committed by a deposed leader', () => {
    const h = clean();
    h.history.audit[4] = { ...h.history.audit[4]!, byHolder: false };
    expect(violations(h).join('\n')).toMatch(/committed by a backend not the leader's/);

    const elsewhere = clean();
    elsewhere.log.edits[0]!.answeredBy = 'ws://127.0.0.1:2/ws';
    expect(violations(elsewhere).join('\n')).toMatch(
      /answered by ws:\/\/127.0.0.1:2\/ws, committed under the lease of/,
    );
  });

  it('catch an edit committed after a newer grant, and two holders at once', () => {
    const h = clean();
    h.log.holds[1]!.from = 940;
    const found = violations(h).join('\n');
    expect(found).toMatch(/revision 1 under fence 10 on f1 committed after agent 1 was granted fence 11/);
    expect(found).toMatch(
      /f1: agent 0 \(protocol view, session s0\) held write fence 10 900\.0-960\.0 ms .* while agent 1 .* fence 11/,
    );
  });

  it('catch a grant in the journal made while an agent held the lock', () => {
    const h = clean();
    h.log.holds[1]!.to = 1_700;
    h.history.audit.push(
      audit(
        6,
        'cluster_locks',
        { session_id: 's9', resource: '1', fence: 12, mode: 'write', granted_at: 1_600 },
        1_610,
      ),
    );
    expect(violations(h).join('\n')).toMatch(
      /f1: write fence 12 granted \(journal\) at 1600\.0 ms while agent 1 .* fence 11/,
    );
  });

  it("date a journaled grant by its first record, not a later leader's rewrite of it", () => {
    // A new leader restored agent 1's fence 11 and renewed it, writing the grant time as it read it
    // back: earlier than agent 0's commit under fence 10. The grant itself came after.
    const h = clean();
    h.history.audit.push(
      audit(6, 'cluster_locks', { session_id: 's1', resource: '1', fence: 11, mode: 'write', granted_at: 900 }, 2_000, {
        op: 'UPDATE',
        epoch: 3,
      }),
    );
    expect(violations(h)).toEqual([]);
  });

  it('catch a hold that overlaps another through a suspension, until the loss is reported', () => {
    // Agent 1 is told fence 11 at 1500, its socket drops at 1560; agent 2 (through a LockHandle) is
    // granted fence 12 at 1800; agent 1 hears at 2000 that its lock was not given back.
    const h = clean();
    Object.assign(h.log.holds[1]!, { to: 2_000, end: 'lost (not-restored)', suspended: 1 });
    h.log.holds.push(hold(2, 12, 1_800, 1_900, { view: 'handle' }));
    expect(violations(h).join('\n')).toMatch(
      /f1: agent 1 \(protocol view, session s1\) held write fence 11 1500\.0-2000\.0 ms \(lost \(not-restored\); suspended 1, restored 0\) while agent 2 \(handle view, session s2\) held write fence 12 1800\.0-1900\.0/,
    );

    // Told before agent 2 was granted, it held nothing then.
    const told = clean();
    Object.assign(told.log.holds[1]!, { to: 1_790, end: 'lost (not-restored)', suspended: 1 });
    told.log.holds.push(hold(2, 12, 1_800, 1_900, { view: 'handle' }));
    expect(violations(told)).toEqual([]);
  });

  it('count a read lock against a write lock, not against another read lock', () => {
    const h = clean();
    h.log.holds.push(hold(2, 12, 1_540, 1_600, { mode: 'read' }));
    expect(violations(h).join('\n')).toMatch(/agent 1 .* held write fence 11 .* while agent 2 .* held read fence 12/);

    const readers = clean();
    readers.log.holds.push(hold(2, 12, 2_000, 2_100, { mode: 'read' }), hold(3, 13, 2_050, 2_150, { mode: 'read' }));
    expect(violations(readers)).toEqual([]);
  });

  it('end a hold at the end of its lease as told, but not before the holder last acted on it', () => {
    // Agent 1 was cut off (its socket open to a paused leader): told of the loss only at 3000, but
    // its lease ended at 1700, before agent 2 was granted the function.
    const h = clean();
    Object.assign(h.log.holds[1]!, { to: 3_000, end: 'lost (expired)', leaseEnd: 1_700 });
    h.log.holds.push(hold(2, 12, 1_800, 1_900));
    expect(violations(h)).toEqual([]);

    // Had it gone on editing under the lock past its lease (a handle still held after the lease,
    // as the SDK showed before it reported such a lock lost), it held it then.
    const used = clean();
    Object.assign(used.log.holds[1]!, { to: 3_000, end: 'released', leaseEnd: 1_700, lastUse: 2_500 });
    used.log.holds.push(hold(2, 12, 1_800, 1_900));
    expect(violations(used).join('\n')).toMatch(/agent 1 .* held write fence 11 1500\.0-2500\.0 ms .* while agent 2/);
  });

  it('catch an edit committed while another session held the function', () => {
    // Agent 0 was told at 930 that its lock was lost; its edit, sent before, committed at 955,
    // inside agent 2's read lock.
    const h = clean();
    Object.assign(h.log.holds[0]!, { to: 930, end: 'lost (expired)', lastUse: 920 });
    h.log.holds.push(hold(2, 12, 935, 1_000, { mode: 'read' }));
    expect(violations(h).join('\n')).toMatch(
      /revision 1 \(agent 0, fence 10 on f1\) committed at 955\.0 ms while agent 2 .* held read fence 12/,
    );
  });

  it('catch a function that changed between two reads under a read lock', () => {
    const h = clean();
    h.log.reads.push({ agent: 2, fn: 1, fence: 12, before: 'a', after: 'a' });
    expect(violations(h)).toEqual([]);
    h.log.reads.push({ agent: 3, fn: 1, fence: 13, before: 'a', after: 'b' });
    expect(violations(h).join('\n')).toMatch(/agent 3: f1 changed under its read lock \(fence 13\) between two reads/);
  });

  it('catch a lock restored after the record shows it released, or expired', () => {
    const restore = {
      agent: 0,
      sessionId: 's0',
      url: URL_A,
      sentAt: 600,
      at: 700,
      fn: 1,
      fence: 10,
      mode: 'write',
      expiresAt: '',
      kept: true,
    };
    const released = clean();
    released.history.audit.splice(1, 1);
    released.history.audit.unshift(audit(0, 'cluster_locks', { session_id: 's0', resource: '1', fence: 10 }, 400));
    released.history.audit[0]!.op = 'DELETE';
    released.log.restores.push(restore);
    expect(violations(released).join('\n')).toMatch(/released in the record/);

    const expired = clean();
    expired.history.audit.unshift(
      audit(0, 'cluster_locks', { session_id: 's0', resource: '1', fence: 10, mode: 'write', expires_at: 550 }, 400),
    );
    expired.log.restores.push(restore);
    expect(violations(expired).join('\n')).toMatch(/expired in the record before the resume was sent/);
  });

  it('catch an agent that makes no progress after a fault', () => {
    const h = clean();
    h.faults.push({ kind: 'pause-leader', startedAt: 1_600, healedAt: 1_700, detail: '' });
    expect(violations(h).join('\n')).toMatch(
      new RegExp(`agent 0 made no progress within ${PROGRESS_BOUND_MS} ms after pause-leader`),
    );
  });
});
