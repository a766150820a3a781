import type { ResultOf } from '../protocol/methods.ts';
import type { SessionRecord } from '../client/session-file.ts';
import type { StagedChange } from '../client/git.ts';

// What `lockstep guard` decides from the server's paths.check answer, and how it says so: pure, so
// that every refusal's wording is tested without git or a server.

type PathAnswer = ResultOf<'paths.check'>['changes'][number];

export interface Verdict {
  ok: boolean;
  /** One paragraph per refused path, then what to do; empty when ok. */
  text: string;
}

function who(s: { name?: string; sessionId: string }): string {
  return s.name === undefined ? `session ${s.sessionId}` : `${s.name} (session ${s.sessionId})`;
}

/** How to queue for `path`, with the MCP tool and the SDK call spelled out. */
export function howToQueue(program: string, path: string): string {
  const paths = JSON.stringify([path]);
  return (
    `queue for it with the MCP tool path_lock {"program": "${program}", "paths": ${paths}, "mode": "write"} ` +
    `or the SDK's client.acquire({ program: '${program}', paths: ${paths}, mode: 'write' })`
  );
}

function notHeld(program: string, a: PathAnswer): string {
  const holders = a.holders.map(
    (h) => `${who(h)}, ${h.mode} lock on ${h.path}${h.description === undefined ? '' : ` ("${h.description}")`}`,
  );
  const queue = a.queueLength === 0 ? 'nobody waiting' : `${a.queueLength} waiting`;
  const held = holders.length === 0 ? 'nobody holds it' : `held by ${holders.join('; ')}`;
  return `${a.path}: your session holds no write lock covering it; ${held}; ${queue}. Then ${howToQueue(program, a.path)}.`;
}

function stale(a: PathAnswer, base: string | null, recorded: NonNullable<PathAnswer['recorded']>): string {
  const from = recorded.commit === undefined ? 'a commit not named' : `commit ${recorded.commit}`;
  const yours = base === null ? 'no such file' : `blob ${base}`;
  const theirs = recorded.blob === null ? 'deleted' : `blob ${recorded.blob}`;
  return (
    `${a.path}: your change is based on ${yours} in HEAD, but ${who(recorded)} released it at ` +
    `${recorded.at} as ${theirs} (${from}). You edited an older copy: bring in ` +
    `${recorded.commit === undefined ? 'their latest commit' : recorded.commit} first (git merge, rebase or cherry-pick), then redo your change on it.`
  );
}

/**
 * Refused: a changed path not covered by a write lock the committing session holds now, or whose
 * base is not the content last recorded for it (a stale copy).
 */
export function verdict(
  program: string,
  session: SessionRecord,
  changes: readonly StagedChange[],
  answers: readonly PathAnswer[],
): Verdict {
  const baseOf = new Map(changes.map((c) => [c.path, c.base]));
  const refusals: string[] = [];
  for (const a of answers) {
    if (!a.held) refusals.push(notHeld(program, a));
    if (a.recorded !== undefined) refusals.push(stale(a, baseOf.get(a.path) ?? null, a.recorded));
  }
  if (refusals.length === 0) return { ok: true, text: '' };
  return {
    ok: false,
    text: [
      `guard: commit refused for ${who(session)} in program ${program}:`,
      ...refusals.map((r) => `- ${r}`),
      'Nothing was committed. (git commit --no-verify skips this check: only for commits outside the team.)',
    ].join('\n'),
  };
}
