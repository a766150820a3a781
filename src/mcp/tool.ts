import type { z } from 'zod';
import {
  type AcquireOptions,
  type LockHandle,
  LockstepClientError,
  type LockstepClient,
  type QueueUpdate,
} from '../client/index.ts';
import type { AgentState } from './agent-state.ts';
import { grantLine, label } from './render.ts';

/** What a tool gets to work with during one call. */
export interface ToolContext {
  client: LockstepClient;
  state: AgentState;
  /** Function names by id in a program, as last seen (kept up to date by the tools that see them). */
  names(program: string): Map<number, string>;
  /** Tells the agent how a long call (a waiting acquire) is going, when it asked for progress. */
  progress(message: string): Promise<void>;
  /** How often a waiting acquire tells its queue position again, unchanged, so that the client's timeout restarts. */
  progressEveryMs: number;
  /** Fires when the agent cancels the call. */
  signal: AbortSignal;
  /** The git working tree the agent works in, for the path tools; undefined outside one. */
  repo: string | undefined;
  /** The program the path tools lock in when the agent names none (the repository's namespace). */
  pathProgram: string;
}

/** A tool's answer: a concise text for the model and the same facts as structured content. */
export interface Outcome {
  text: string;
  data: Record<string, unknown>;
}

export interface Tool<S extends z.ZodObject = z.ZodObject> {
  name: string;
  description: string;
  input: S;
  run(args: z.infer<S>, ctx: ToolContext): Promise<Outcome>;
}

export function tool<S extends z.ZodObject>(t: Tool<S>): Tool<S> {
  return t;
}

/** Function ids for ids or names; names are looked up in the program (NOT_FOUND for an unknown one). */
export async function resolveFunctions(
  ctx: ToolContext,
  program: string,
  refs: ReadonlyArray<number | string> | undefined,
): Promise<number[] | undefined> {
  if (refs === undefined) return undefined;
  if (refs.every((r) => typeof r === 'number')) return refs as number[];
  const { functions } = await ctx.client.program.get({ program });
  const names = ctx.names(program);
  for (const f of functions) names.set(f.id, f.name);
  const byName = new Map(functions.map((f) => [f.name, f.id]));
  const unknown = refs.filter((r) => typeof r === 'string' && !byName.has(r));
  if (unknown.length > 0)
    throw new LockstepClientError({
      type: 'NOT_FOUND',
      code: 404,
      message: `no function named ${unknown.map((u) => JSON.stringify(u)).join(', ')} in program ${program}`,
      retryable: false,
      data: { names: unknown },
    });
  return refs.map((r) => (typeof r === 'number' ? r : (byName.get(r) as number)));
}

/**
 * A lock tool's answer once acquireFor has its grants, the same for functions and paths: `notes`
 * first, then each grant and whether it waited its turn; `data` adds to the structured content.
 */
export function grantedOutcome(
  ctx: ToolContext,
  program: string,
  lock: LockHandle,
  notes: readonly string[] = [],
  data: Record<string, unknown> = {},
): Outcome {
  const names = ctx.names(program);
  return {
    text: [
      ...notes,
      ...lock.grants.map((g) => `granted: ${grantLine(g, names)}`),
      ...(lock.queued ? ['(after waiting in the queue)'] : []),
    ].join('\n'),
    data: { status: 'granted', grants: lock.grants, waited: lock.queued, ...data },
  };
}

/** How the lock tools wait (tool-schemas.ts, `waiting`). */
export interface WaitArgs {
  mode: 'read' | 'write';
  ttlMs?: number | undefined;
  wait?: boolean | undefined;
  timeoutMs?: number | undefined;
  description?: string | undefined;
}

/**
 * Acquires what `what` names for a lock tool: waiting by default, each queue position sent as
 * progress, withdrawn when the agent cancels the call. While the position stays the same it is
 * sent again every `progressEveryMs` with how long the call has waited: an MCP client restarts its
 * request timeout on progress only when progress comes (docs/mcp.md, "Waiting for a lock").
 */
export async function acquireFor(
  ctx: ToolContext,
  program: string,
  args: WaitArgs,
  what: Pick<AcquireOptions, 'functions' | 'structure' | 'paths'>,
): Promise<LockHandle> {
  const started = Date.now();
  let where: string | undefined;
  const tell = (message: string) => ctx.progress(message).catch(() => undefined);
  const again = setInterval(() => {
    if (where !== undefined) tell(`queued: ${where} (waited ${Math.round((Date.now() - started) / 1000)} s)`);
  }, ctx.progressEveryMs);
  const onQueue = (q: QueueUpdate) => {
    const names = ctx.names(program);
    where = q.positions.map((p) => `position ${p.position} for ${label(p.resource, names)}`).join(', ');
    tell(`queued: ${where}`);
  };
  try {
    return await ctx.client.acquire({
      program,
      mode: args.mode,
      ...what,
      ...(args.ttlMs === undefined ? {} : { ttlMs: args.ttlMs }),
      ...(args.description === undefined ? {} : { description: args.description }),
      ...(args.timeoutMs === undefined ? {} : { waitTimeoutMs: args.timeoutMs }),
      wait: args.wait ?? true,
      signal: ctx.signal,
      onQueue,
    });
  } finally {
    clearInterval(again);
  }
}
