import type { z } from 'zod';
import { LockstepClientError, type LockstepClient } from '../client/index.ts';
import type { AgentState } from './agent-state.ts';

/** What a tool gets to work with during one call. */
export interface ToolContext {
  client: LockstepClient;
  state: AgentState;
  /** Function names by id in a program, as last seen (kept up to date by the tools that see them). */
  names(program: string): Map<number, string>;
  /** Tells the agent how a long call (a waiting acquire) is going, when it asked for progress. */
  progress(message: string): Promise<void>;
  /** Fires when the agent cancels the call. */
  signal: AbortSignal;
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
