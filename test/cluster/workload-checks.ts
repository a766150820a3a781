import type { AuditRow } from './workload-audit.ts';
import { type Committed, exclusionChecks, JOURNAL_CLOCK_MS, type JournalGrant } from './workload-exclusion.ts';
import type { FaultNote } from './workload-faults.ts';
import { type AgentLog, type EditRecord, holdEnd } from './workload-log.ts';

// The checks of docs/cluster.md ("How it is tested"), run after the workload on what the agents recorded and what
// PostgreSQL holds (the revisions, the final function bodies, and the audit of commits, journal
// changes and takeovers). Each returns what it found broken; nothing here trusts the server's
// own account of itself beyond what the database committed.

/** Every agent finishes a cycle with an acknowledged edit within this long after a fault is healed. */
export const PROGRESS_BOUND_MS = 30_000;
/** The agents' clock against the database's: one machine's clock, read two ways (workload-log.ts). */
const CLIENT_CLOCK_MS = 2;

export interface Revision {
  revision: number;
  sessionId: string;
  key: string | null;
  ops: Array<{ op: string; function?: number; node?: { id: number } }>;
}

export interface History {
  revisions: Revision[];
  audit: AuditRow[];
  finalNodes: Map<number, number[]>;
  /** Revisions made before the workload (the functions created). */
  setupRevision: number;
}

export interface CheckResult {
  violations: string[];
  counts: Record<string, number | string>;
}

export function check(log: AgentLog, history: History, faults: FaultNote[]): CheckResult {
  const violations: string[] = [];
  const byNode = new Map(log.edits.map((e) => [e.nodeId, e]));
  const commits = history.audit.filter((a) => a.tbl === 'revisions');
  const commitOf = new Map(commits.map((a) => [Number(a.data.revision), a]));
  const takeovers = history.audit.filter((a) => a.tbl === 'lockstep_lease');

  // Which revision added which of the agents' nodes; what the functions hold in the end.
  const addedIn = new Map<number, number[]>();
  for (const r of history.revisions) {
    if (r.revision <= history.setupRevision) continue;
    if (!commitOf.has(r.revision)) violations.push(`revision ${r.revision} has no audited commit`);
    for (const op of r.ops) {
      if (op.op !== 'addNode' || op.node === undefined) continue;
      addedIn.set(op.node.id, [...(addedIn.get(op.node.id) ?? []), r.revision]);
      const e = byNode.get(op.node.id);
      if (e === undefined) violations.push(`revision ${r.revision} adds node ${op.node.id} that no agent sent`);
      else if (r.sessionId !== e.sessionId || r.key !== e.key)
        violations.push(`revision ${r.revision} (session ${r.sessionId}, key ${r.key}) is not node ${e.nodeId}'s edit`);
    }
  }
  const present = new Map<number, number>();
  for (const ids of history.finalNodes.values()) for (const id of ids) present.set(id, (present.get(id) ?? 0) + 1);

  // Acknowledged edits present exactly once; none applied twice; refused ones not at all.
  for (const e of log.edits) {
    const revs = addedIn.get(e.nodeId) ?? [];
    const n = present.get(e.nodeId) ?? 0;
    const what = `agent ${e.agent} edit ${e.seq} (node ${e.nodeId}, fence ${e.fence}, ${e.attempts} attempts)`;
    if (revs.length > 1 || n > 1) violations.push(`${what}: applied in revisions [${revs}], present ${n} times`);
    if (e.outcome.kind === 'ok') {
      if (revs.length !== 1 || revs[0] !== e.outcome.result.revision || n !== 1)
        violations.push(
          `${what}: acknowledged as revision ${e.outcome.result.revision}, added in [${revs}], present ${n} times`,
        );
    } else if (e.outcome.kind === 'error' && (revs.length > 0 || n > 0)) {
      violations.push(`${what}: refused (${e.outcome.type}) but added in [${revs}], present ${n} times`);
    }
  }
  for (const [id, n] of present)
    if (!addedIn.has(id)) violations.push(`node ${id} is in a function ${n} times, no revision added it`);

  // Per function, the fences of committed edits never decrease in revision order.
  const lastFence = new Map<number, { fence: number; revision: number }>();
  const committed: Committed[] = [];
  for (const [nodeId, revs] of [...addedIn].sort(([, a], [, b]) => a[0]! - b[0]!)) {
    const e = byNode.get(nodeId);
    if (e === undefined) continue;
    const revision = revs[0]!;
    const last = lastFence.get(e.fn);
    if (last !== undefined && e.fence < last.fence)
      violations.push(
        `f${e.fn}: revision ${revision} under fence ${e.fence} after revision ${last.revision} under ${last.fence}`,
      );
    lastFence.set(e.fn, { fence: e.fence, revision });
    const audit = commitOf.get(revision);
    if (audit !== undefined) committed.push({ e, revision, at: audit.at });
    // Answered at the first attempt, the edit was committed by the node that answered: it must
    // have held the lease at that COMMIT.
    if (audit !== undefined && e.outcome.kind === 'ok' && e.attempts === 1 && audit.url !== e.answeredBy)
      violations.push(`revision ${revision}: answered by ${e.answeredBy}, committed under the lease of ${audit.url}`);
  }

  // No write committed by a deposed leader: every audited commit (revisions and journal) was made
  // by a backend of the lease holder as of its COMMIT, and epochs never go back in commit order.
  let epoch = 0;
  for (const a of history.audit) {
    if (a.tbl === 'lockstep_lease') continue;
    if (!a.byHolder)
      violations.push(`audit #${a.id}: ${a.op} on ${a.tbl} committed by a backend not the leader's (epoch ${a.epoch})`);
    if (a.epoch < epoch) violations.push(`audit #${a.id}: ${a.tbl} committed at epoch ${a.epoch} after epoch ${epoch}`);
    epoch = Math.max(epoch, a.epoch);
  }

  // Every edit committed inside its own grant: the agent held fence f (it saw the grant or got it
  // back), and no grant of a higher fence on the function, from any epoch, came before the commit.
  // A grant's time is its first record's, by the leader that made it: a later leader rewrites the
  // row of a lock it restored (a renewal) with the time as it read it back, off by as long as its
  // read of the journal took (src/cluster/restore.ts takes its clock before the query).
  const journalGrants = new Map<string, JournalGrant>();
  for (const a of history.audit) {
    if (a.tbl !== 'cluster_locks' || a.op === 'DELETE') continue;
    const grant = `${a.data.resource}/${a.data.fence}/${a.data.session_id}`;
    if (!journalGrants.has(grant))
      journalGrants.set(grant, {
        fn: Number(a.data.resource),
        fence: Number(a.data.fence),
        mode: a.data.mode,
        sessionId: a.data.session_id,
        at: Number(a.data.granted_at),
      });
  }
  for (const { e, revision, at } of committed) {
    const own = log.holds.some(
      (h) => h.sessionId === e.sessionId && h.fn === e.fn && h.fence === e.fence && h.mode === 'write',
    );
    if (!own) violations.push(`revision ${revision}: fence ${e.fence} on f${e.fn} was never held by ${e.sessionId}`);
    const newerSeen = log.holds.find((h) => h.fn === e.fn && h.fence > e.fence && h.from + CLIENT_CLOCK_MS <= at);
    if (newerSeen !== undefined)
      violations.push(
        `revision ${revision} under fence ${e.fence} on f${e.fn} committed after agent ${newerSeen.agent} was granted fence ${newerSeen.fence}`,
      );
    const newerJournaled = [...journalGrants.values()].find(
      (g) => g.fn === e.fn && g.fence > e.fence && g.at < at - JOURNAL_CLOCK_MS,
    );
    if (newerJournaled !== undefined)
      violations.push(
        `revision ${revision} under fence ${e.fence} on f${e.fn} committed after fence ${newerJournaled.fence} was granted (journal)`,
      );
  }

  // What the agents were told of their locks: no two sessions' holds overlap, against each other,
  // the commits and the journal.
  const exclusion = exclusionChecks(log, committed, [...journalGrants.values()]);
  violations.push(...exclusion.violations);

  // No lock restored that the record shows released or expired: each restore matches the journal
  // as it stood when the restoring node took over (the newest takeover by that node before it).
  for (const r of log.restores) {
    const takeover = takeovers.filter((t) => t.url === r.url && t.at < r.at + CLIENT_CLOCK_MS).at(-1);
    const what = `agent ${r.agent}: f${r.fn} fence ${r.fence} restored by ${r.url}`;
    if (takeover === undefined) {
      violations.push(`${what}, which never took over`);
      continue;
    }
    let row: any;
    for (const a of history.audit) {
      if (a.id >= takeover.id) break;
      if (a.tbl !== 'cluster_locks' || a.data.session_id !== r.sessionId || a.data.resource !== String(r.fn)) continue;
      row = a.op === 'DELETE' ? undefined : a.data;
    }
    if (row === undefined) violations.push(`${what} at epoch ${takeover.epoch}: released in the record`);
    else if (Number(row.fence) !== r.fence || row.mode !== r.mode)
      violations.push(`${what} at epoch ${takeover.epoch}: the record has fence ${row.fence} ${row.mode}`);
    else if (Number(row.expires_at) <= r.sentAt)
      violations.push(`${what} at epoch ${takeover.epoch}: expired in the record before the resume was sent`);
  }

  // Progress: after every fault, every agent acknowledges an edit within the bound.
  const agents = [...new Set(log.edits.map((e) => e.agent))];
  let maxRecovery = 0;
  for (const f of faults) {
    for (const agent of agents) {
      const next = log.progress.find((p) => p.agent === agent && p.at >= f.healedAt);
      const took = next === undefined ? Number.POSITIVE_INFINITY : next.at - f.healedAt;
      if (took > PROGRESS_BOUND_MS)
        violations.push(`agent ${agent} made no progress within ${PROGRESS_BOUND_MS} ms after ${f.kind}`);
      else maxRecovery = Math.max(maxRecovery, took);
    }
  }

  const outcome = (e: EditRecord) =>
    (e.refusals.length > 0 ? 'after a retryable refusal, ' : '') +
    (e.outcome.kind === 'error'
      ? `failed ${e.outcome.type}`
      : e.outcome.kind === 'unknown'
        ? `unknown (${addedIn.has(e.nodeId) ? 'applied' : 'not applied'})`
        : e.attempts > 1
          ? 'acknowledged on a retry'
          : 'acknowledged');
  // Not a violation (a retryable answer promises nothing, the key makes the retry safe), but worth
  // seeing: refusals answered for an edit whose COMMIT had already landed.
  const refusedAfterCommit = log.edits.filter((e) => {
    const revision = addedIn.get(e.nodeId)?.[0];
    const at = revision === undefined ? undefined : commitOf.get(revision)?.at;
    return at !== undefined && e.refusals.some((r) => r.at > at);
  }).length;
  const holds = (view: string) => log.holds.filter((h) => h.view === view).length;
  const counts: Record<string, number | string> = {
    cycles: log.cycles,
    edits: `${log.edits.length} (${log.edits.filter((e) => e.blind).length} without expectedHashes)`,
    revisions: history.revisions.length - history.setupRevision,
    // The audit is installed once the first node leads: every takeover it saw came after.
    takeovers: takeovers.length,
    'restored locks (kept)': log.restores.filter((r) => r.kept).length,
    'restored locks (released)': log.restores.filter((r) => !r.kept).length,
    'sessions started / resumed / lost': `${log.sessions.started} / ${log.sessions.resumed} / ${log.sessions.lost}`,
    'SDK failover events': log.sessions.failovers,
    'max recovery ms': Math.round(maxRecovery),
    'edits refused as retryable after their commit landed': refusedAfterCommit,
    'holds checked (protocol view / handle view)': `${holds('protocol')} / ${holds('handle')}`,
    'holds of read locks (reads compared)': `${log.holds.filter((h) => h.mode === 'read').length} (${log.reads.length})`,
    'holds suspended / given back by a new leader': `${log.holds.filter((h) => h.suspended > 0).length} / ${log.holds.filter((h) => h.restored > 0).length}`,
    'holds that ran to their lease end': log.holds.filter((h) => h.to === undefined || holdEnd(h) < h.to).length,
    'overlapping holds': exclusion.overlaps,
  };
  for (const e of log.edits) counts[`edits ${outcome(e)}`] = Number(counts[`edits ${outcome(e)}`] ?? 0) + 1;
  for (const h of log.holds) {
    const how = `holds ended: ${h.end ?? 'not ended'}`;
    counts[how] = Number(counts[how] ?? 0) + 1;
  }
  return { violations, counts };
}
