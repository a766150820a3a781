import type { LockstepClientError } from '../client/index.ts';
import type { FunctionDiff } from '../protocol/program.ts';
import { isPath, isStructure, type Resource } from '../protocol/resource.ts';
import type { Waiters } from './agent-state.ts';
import type { Grant } from '../protocol/wire.ts';

// Concise text for a model to read, next to the same facts as structured content.

/** Function names by id, where the bridge knows them (for "f (id 3)" rather than "function 3"). */
export type Names = ReadonlyMap<number, string>;

export function shortHash(hash: string): string {
  return hash.slice(0, 12);
}

export function label(r: Resource, names: Names): string {
  if (isStructure(r)) return `the structure of ${r.program}`;
  if (isPath(r)) return `${r.path} in ${r.program}`;
  const name = names.get(r.function);
  return name === undefined ? `function ${r.function}` : `${name} (id ${r.function})`;
}

export function grantLine(g: Grant, names: Names): string {
  return `${g.mode} lock on ${label(g.resource, names)}, fence ${g.fence}, lease until ${g.expiresAt}`;
}

/** What a release tool says it released, the same for functions and paths. */
export function releasedLine(released: readonly Resource[], names: Names): string {
  return `released: ${released.map((r) => label(r, names)).join(', ')}`;
}

/** "; 2 waiting behind it (the first for 40 s)", as last told, aged by the time since. */
export function waitersText(w: Waiters | undefined, now = Date.now()): string {
  if (w === undefined) return '';
  const seconds = Math.round((w.oldestWaitMs + now - w.at) / 1000);
  return `; ${w.waiting} waiting behind it (the first for ${seconds} s): commit and release it when you can`;
}

function nodeText(n: { id: number; op: string; attrs?: unknown }): string {
  const attrs = n.attrs === undefined || JSON.stringify(n.attrs) === '{}' ? '' : ` ${JSON.stringify(n.attrs)}`;
  return `#${n.id} ${n.op}${attrs}`;
}

function edgeText(e: { id: number; from: { node: number; port: number }; to: { node: number; port: number } }): string {
  return `#${e.id} ${e.from.node}:${e.from.port}->${e.to.node}:${e.to.port}`;
}

/** "nodes added: #2 const; edges removed: #1 1:0->2:0", or "no change". */
export function diffText(diff: FunctionDiff): string {
  const parts: string[] = [];
  if (diff.name !== undefined)
    parts.push(`renamed ${JSON.stringify(diff.name.before)} -> ${JSON.stringify(diff.name.after)}`);
  if (diff.signature !== undefined) parts.push('signature changed');
  const lists = [
    ['nodes added', diff.nodes.added.map(nodeText)],
    ['nodes removed', diff.nodes.removed.map(nodeText)],
    ['nodes modified', diff.nodes.modified.map((m) => `${nodeText(m.before)} -> ${nodeText(m.after)}`)],
    ['edges added', diff.edges.added.map(edgeText)],
    ['edges removed', diff.edges.removed.map(edgeText)],
    ['edges modified', diff.edges.modified.map((m) => `${edgeText(m.before)} -> ${edgeText(m.after)}`)],
  ] as const;
  for (const [what, items] of lists) if (items.length > 0) parts.push(`${what}: ${items.join(', ')}`);
  return parts.length === 0 ? 'no change' : parts.join('; ');
}

interface Conflict {
  functionId: number;
  expectedHash: string;
  currentHash: string;
  diff: FunctionDiff | null;
}

interface Blocker {
  resource: Resource;
  holders: Array<{
    name?: string;
    sessionId: string;
    mode: string;
    /** On a path: the lock the holder has, which may be above or below the path asked for. */
    resource?: Resource;
    description?: string;
    expiresAt: string;
  }>;
  queueLength: number;
}

/** A refusal of a call to the tool `tool`, said so that a model knows what happened and what to do next. */
export function errorText(err: LockstepClientError, names: Names, tool: string): string {
  const head = `${err.type}: ${err.message}`;
  switch (err.type) {
    case 'CONFLICT': {
      const conflicts = (err.data.conflicts ?? []) as Conflict[];
      const lines = conflicts.map(
        (c) =>
          `- ${label({ program: '', function: c.functionId }, names)}: you based the edit on ${shortHash(c.expectedHash)}, ` +
          `it is now ${shortHash(c.currentHash)}. Changed since: ` +
          (c.diff === null ? 'unknown (no version had the hash you gave)' : diffText(c.diff)),
      );
      return [
        'CONFLICT: someone changed these functions since you read them; nothing was applied.',
        ...lines,
        'Read them again (function_read) and redo your edit on what they are now.',
      ].join('\n');
    }
    case 'LOCK_DENIED': {
      const blockers = (err.data.blockers ?? []) as Blocker[];
      const lines = blockers.map((b) => {
        const holders = b.holders.map((h) => {
          // A path's holder may hold a path above or below the one asked for: name what it holds, as the guard does.
          const on = h.resource !== undefined && isPath(h.resource) ? ` lock on ${h.resource.path}` : '';
          return `${h.name ?? h.sessionId} (${h.mode}${on}${h.description === undefined ? '' : `, "${h.description}"`}, until ${h.expiresAt})`;
        });
        return `- ${label(b.resource, names)}: held by ${holders.join(', ') || 'nobody'}; ${b.queueLength} waiting`;
      });
      return [`${head}`, ...lines, `Call ${tool} with wait: true to queue for it.`].join('\n');
    }
    case 'WAIT_TIMEOUT':
      return (
        `WAIT_TIMEOUT: not granted within the timeoutMs you gave; your place in the queue is given up. ` +
        `Call ${tool} again to queue anew (at the back), or without timeoutMs to wait for as long as it takes.`
      );
    case 'LOCK_REQUIRED':
      return `${head}\nTake the write lock first (lock_acquire; the structure lock to add, remove or rename functions).`;
    case 'STALE_FENCE':
      return `${head}\nYour lock ended (expired or released) and was granted again since: take the lock again, read, redo.`;
    default:
      return err.retryable
        ? `${head}\nThis may succeed if retried${err.retryAfterMs === undefined ? '' : ` after ${err.retryAfterMs} ms`}.`
        : head;
  }
}
