import { type AgentLog, type EditRecord, type Hold, holdEnd } from './workload-log.ts';

// Client-observed exclusion (docs/cluster.md, "How it is tested"): what the agents were told of
// their locks, held against each other and against what the database committed. A hold runs from
// the grant received to the release sent or the loss reported (holdEnd); per function, no two
// sessions' holds overlap where one of them is a write.

/**
 * The journal converts the leader's clock to the database's from its renewals' round trips; a
 * grant time it records may be off by that much (both clocks are this machine's).
 */
export const JOURNAL_CLOCK_MS = 20;
/** The database's commit times against ours: one machine's clock, read two ways (workload-log.ts). */
const COMMIT_CLOCK_MS = 2;

export interface Committed {
  e: EditRecord;
  revision: number;
  /** COMMIT time, the database's clock. */
  at: number;
}

export interface JournalGrant {
  fn: number;
  fence: number;
  mode: string;
  sessionId: string;
  /** granted_at as the leader recorded it, in the database's clock. */
  at: number;
}

const conflict = (a: { mode: string }, b: { mode: string }) => a.mode === 'write' || b.mode === 'write';

export function exclusionChecks(
  log: AgentLog,
  committed: readonly Committed[],
  journalGrants: readonly JournalGrant[],
): { violations: string[]; overlaps: number } {
  const violations: string[] = [];
  const t = (at: number) => (at - log.startedAt).toFixed(1);
  const show = (h: Hold) =>
    `agent ${h.agent} (${h.view} view, session ${h.sessionId.slice(0, 8)}) held ${h.mode} fence ${h.fence} ` +
    `${t(h.from)}-${t(holdEnd(h))} ms (${h.end ?? 'not ended'}${h.to === undefined || holdEnd(h) !== h.to ? ', bounded by its lease or last use' : ''}; ` +
    `suspended ${h.suspended}, restored ${h.restored})`;

  // Two sessions' holds never overlap, write against anything, read against write.
  let overlaps = 0;
  const byFn = new Map<number, Hold[]>();
  for (const h of log.holds) byFn.set(h.fn, [...(byFn.get(h.fn) ?? []), h]);
  for (const [fn, holds] of byFn) {
    holds.sort((a, b) => a.from - b.from);
    for (let i = 0; i < holds.length; i++) {
      const a = holds[i]!;
      for (let j = i + 1; j < holds.length && holds[j]!.from < holdEnd(a); j++) {
        const b = holds[j]!;
        if (a.sessionId === b.sessionId || !conflict(a, b) || holdEnd(b) <= a.from) continue;
        overlaps++;
        violations.push(`f${fn}: ${show(a)} while ${show(b)}`);
      }
    }
  }

  // No edit committed while another session held the function (read or write), as it was told.
  for (const { e, revision, at } of committed) {
    const inside = log.holds.find(
      (h) =>
        h.fn === e.fn &&
        h.sessionId !== e.sessionId &&
        h.from + COMMIT_CLOCK_MS < at &&
        at < holdEnd(h) - COMMIT_CLOCK_MS,
    );
    if (inside !== undefined)
      violations.push(
        `revision ${revision} (agent ${e.agent}, fence ${e.fence} on f${e.fn}) committed at ${t(at)} ms while ${show(inside)}`,
      );
  }

  // Nor a conflicting grant in any leader's journal (to whomever, whether or not its holder heard
  // of it) made while an agent held the function.
  for (const h of log.holds) {
    const inside = journalGrants.find(
      (g) =>
        g.fn === h.fn &&
        g.sessionId !== h.sessionId &&
        conflict(g, h) &&
        g.at > h.from + JOURNAL_CLOCK_MS &&
        g.at < holdEnd(h) - JOURNAL_CLOCK_MS,
    );
    if (inside !== undefined)
      violations.push(
        `f${h.fn}: ${inside.mode} fence ${inside.fence} granted (journal) at ${t(inside.at)} ms while ${show(h)}`,
      );
  }

  // What a read lock's holder read twice, no writer changed in between.
  for (const r of log.reads)
    if (r.before !== r.after)
      violations.push(`agent ${r.agent}: f${r.fn} changed under its read lock (fence ${r.fence}) between two reads`);

  return { violations, overlaps };
}
