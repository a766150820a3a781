import type { AgentLog, EditRecord } from './workload-agent.ts';
import type { AuditRow } from './workload-audit.ts';
import type { FaultNote } from './workload-faults.ts';

// The checks of docs/cluster.md ("How it is tested"), run after the workload on what the agents recorded and what
// PostgreSQL holds (the revisions, the final function bodies, and the audit of commits, journal
// changes and takeovers). Each returns what it found broken; nothing here trusts the server's
// own account of itself beyond what the database committed.

/** Every agent finishes a cycle with an acknowledged edit within this long after a fault is healed. */
export const PROGRESS_BOUND_MS = 30_000;
/**
 * The journal converts the leader's clock to the database's from its renewals' round trips; a
 * grant time it records may be off by that much (both clocks are this machine's).
 */
const JOURNAL_CLOCK_MS = 20;
/** The agents' times are whole milliseconds (Date.now()), the database's finer: a time t is [t, t + 1). */
const CLIENT_CLOCK_MS = 1;

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
    const what = `agent ${e.agent} cycle ${e.cycle} (node ${e.nodeId}, fence ${e.fence}, ${e.attempts} attempts)`;
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
  const committed: Array<{ e: EditRecord; revision: number; at: number }> = [];
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
  const journalGrants = history.audit
    .filter((a) => a.tbl === 'cluster_locks' && a.op !== 'DELETE')
    .map((a) => ({ fn: Number(a.data.resource), fence: Number(a.data.fence), at: Number(a.data.granted_at) }));
  for (const { e, revision, at } of committed) {
    const own = log.holds.some((h) => h.sessionId === e.sessionId && h.fn === e.fn && h.fence === e.fence);
    if (!own) violations.push(`revision ${revision}: fence ${e.fence} on f${e.fn} was never held by ${e.sessionId}`);
    const newerSeen = log.holds.find(
      (h) => h.fn === e.fn && h.fence > e.fence && h.how === 'granted' && h.from + CLIENT_CLOCK_MS <= at,
    );
    if (newerSeen !== undefined)
      violations.push(
        `revision ${revision} under fence ${e.fence} on f${e.fn} committed after agent ${newerSeen.agent} was granted fence ${newerSeen.fence}`,
      );
    const newerJournaled = journalGrants.find(
      (g) => g.fn === e.fn && g.fence > e.fence && g.at < at - JOURNAL_CLOCK_MS,
    );
    if (newerJournaled !== undefined)
      violations.push(
        `revision ${revision} under fence ${e.fence} on f${e.fn} committed after fence ${newerJournaled.fence} was granted (journal)`,
      );
  }

  // No two write locks on a function held at once, restored ones included: the spans in which an
  // agent knew it held a lock never overlap another fence's.
  const holds = [...log.holds].sort((a, b) => a.from - b.from);
  for (let i = 0; i < holds.length; i++) {
    for (let j = i + 1; j < holds.length && holds[j]!.from < holds[i]!.to; j++) {
      const [a, b] = [holds[i]!, holds[j]!];
      if (a.fn === b.fn && a.fence !== b.fence)
        violations.push(
          `f${a.fn}: agent ${a.agent} held fence ${a.fence} (${a.how}, ${a.from}-${a.to}) while agent ${b.agent} held ${b.fence} (${b.how}, ${b.from}-${b.to})`,
        );
    }
  }

  // Nor a grant in any leader's journal (to whomever, whether or not its holder heard of it)
  // made inside such a span.
  for (const h of holds) {
    const inside = journalGrants.find(
      (g) => g.fn === h.fn && g.fence !== h.fence && g.at > h.from + JOURNAL_CLOCK_MS && g.at < h.to - JOURNAL_CLOCK_MS,
    );
    if (inside !== undefined)
      violations.push(
        `f${h.fn}: fence ${inside.fence} granted (journal) while agent ${h.agent} held ${h.fence} (${h.how}, ${h.from}-${h.to})`,
      );
  }

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
  const counts: Record<string, number | string> = {
    cycles: log.edits.length,
    revisions: history.revisions.length - history.setupRevision,
    // The audit is installed once the first node leads: every takeover it saw came after.
    takeovers: takeovers.length,
    'restored locks (kept)': log.restores.filter((r) => r.kept).length,
    'restored locks (released)': log.restores.filter((r) => !r.kept).length,
    'sessions started / resumed / lost': `${log.sessions.started} / ${log.sessions.resumed} / ${log.sessions.lost}`,
    'SDK failover events': log.sessions.failovers,
    'max recovery ms': maxRecovery,
    'edits refused as retryable after their commit landed': refusedAfterCommit,
  };
  for (const e of log.edits) counts[`edits ${outcome(e)}`] = Number(counts[`edits ${outcome(e)}`] ?? 0) + 1;
  return { violations, counts };
}
