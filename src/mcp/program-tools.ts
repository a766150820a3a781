import { type LockstepClient, LockstepClientError, type ResultOf } from '../client/index.ts';
import { RpcCode } from '../protocol/errors.ts';
import type { EditOp } from '../protocol/program.ts';
import { diffText, shortHash } from './render.ts';
import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import { resolveFunctions, type ToolContext, tool } from './tool.ts';
import { EditApplyInput, FunctionReadInput, HistoryInput, ProgramOverviewInput } from './tool-schemas.ts';

const STRUCTURE_OPS = new Set(['addFunction', 'removeFunction', 'renameFunction']);

export const programOverview = tool({
  name: 'program_overview',
  description:
    "Start here: the program's functions (id, name, version, short hash) with who holds or waits for each, " +
    'and the agents connected. Needs no lock.',
  input: ProgramOverviewInput,
  async run(args, ctx) {
    const program = args.program ?? DEFAULT_PROGRAM;
    const [overview, { agents }] = await Promise.all([ctx.client.program.get({ program }), ctx.client.agent.list()]);
    const names = ctx.names(program);
    for (const f of overview.functions) names.set(f.id, f.name);
    const byId = new Map(agents.map((a) => [a.sessionId, a.name]));
    const fnLines = overview.functions.map((f) => {
      const lock =
        f.lock === null
          ? 'free'
          : `${f.lock.mode === null ? 'free' : `${f.lock.mode}-locked by ${f.lock.holders.map((h) => h.name ?? byId.get(h.sessionId) ?? h.sessionId).join(', ')}`}` +
            (f.lock.queued > 0 ? `; ${f.lock.queued} waiting` : '');
      return `- ${f.name} (id ${f.id}) v${f.version} ${shortHash(f.hash)}: ${lock}`;
    });
    const me = ctx.client.sessionId;
    const agentLines = agents.map(
      (a) =>
        `- ${a.name}${a.sessionId === me ? ' (you)' : ''}: ${a.role}, ${a.locks.length} lock(s) held` +
        (a.waiting.length > 0 ? `, waiting for ${a.waiting.length}` : ''),
    );
    return {
      text: [
        `program ${overview.name}, revision ${overview.revision}, ${overview.functions.length} function(s):`,
        ...fnLines,
        `agents connected (${agents.length}):`,
        ...agentLines,
      ].join('\n'),
      data: { program: overview, agents },
    };
  },
});

export const functionRead = tool({
  name: 'function_read',
  description:
    'Read functions in full (by id or name): nodes, edges, version and content hash. Read before you edit: ' +
    'edit_apply checks your edit against the hash of what you read here, so a change someone made meanwhile ' +
    'is caught as a conflict instead of being overwritten. You are told (at the top of a later result) when a ' +
    'function you read changes. Needs no lock.',
  input: FunctionReadInput,
  async run(args, ctx) {
    const program = args.program ?? DEFAULT_PROGRAM;
    const ids = (await resolveFunctions(ctx, program, args.functions)) as number[];
    const read = await Promise.all(ids.map((id) => ctx.client.function.get({ program, function: id })));
    const names = ctx.names(program);
    for (const r of read) {
      names.set(r.function.id, r.function.name);
      ctx.state.remember(program, r.function.id, r.hash);
    }
    await ctx.client.function.watch({ program, functions: ids });
    return {
      text: read
        .map(
          (r) =>
            `${r.function.name} (id ${r.function.id}) version ${r.version} hash ${r.hash}\n${JSON.stringify(r.function)}`,
        )
        .join('\n\n'),
      data: { functions: read },
    };
  },
});

/** The integer function ids the ops touch (a string names a function the same edit adds). */
function touched(ops: readonly EditOp[]): number[] {
  const ids = new Set<number>();
  for (const op of ops) if ('function' in op && typeof op.function === 'number') ids.add(op.function);
  return [...ids];
}

/** Fences of the write locks held on these functions (and the structure when `structure`). */
function heldFences(client: LockstepClient, program: string, ids: readonly number[], structure: boolean) {
  const fences: Record<string, number> = {};
  for (const id of ids) {
    const g = client.heldGrant({ program, function: id });
    if (g?.mode === 'write') fences[String(id)] = g.fence;
  }
  const s = client.heldGrant({ program, structure: true });
  if (structure && s?.mode === 'write') fences.structure = s.fence;
  return fences;
}

function committed(ctx: ToolContext, program: string, r: ResultOf<'edit.apply'>): string {
  const names = ctx.names(program);
  for (const f of r.functions) {
    names.set(f.id, f.name);
    // The agent wrote this version itself: it is what it now knows the function to be.
    ctx.state.remember(program, f.id, f.hash);
  }
  const lines = r.functions.map((f) => `- ${f.name} (id ${f.id}) now version ${f.version} ${shortHash(f.hash)}`);
  if (r.created.length > 0) lines.push(`created: ${r.created.map((c) => `${c.name} (id ${c.id})`).join(', ')}`);
  if (r.removed.length > 0) lines.push(`removed: ${r.removed.map((id) => `id ${id}`).join(', ')}`);
  return [`committed revision ${r.revision}:`, ...lines].join('\n');
}

export const editApply = tool({
  name: 'edit_apply',
  description:
    'Apply edit operations atomically (all or none) under your write locks. By default the edit is checked ' +
    'against the hashes of what you last read (function_read) and the fences of the locks you hold, so it ' +
    'only applies to the code you actually saw, under locks you still hold. On CONFLICT nothing is applied and ' +
    'the result shows what changed since your read: read again and redo. Ops refer to existing functions by ' +
    'id; a function added earlier in the same edit is referred to by its name.',
  input: EditApplyInput,
  async run(args, ctx) {
    const program = args.program ?? DEFAULT_PROGRAM;
    const ids = touched(args.ops);
    const expectedHashes =
      args.expectedHashes ??
      Object.fromEntries(
        ids.flatMap((id) => {
          const hash = ctx.state.hashOf(program, id);
          return hash === undefined ? [] : [[String(id), hash]];
        }),
      );
    const structure = args.ops.some((op) => STRUCTURE_OPS.has(op.op));
    const fences = args.fences ?? heldFences(ctx.client, program, ids, structure);
    const r = await ctx.client.edit.apply({ program, ops: args.ops, expectedHashes, fences });
    return { text: committed(ctx, program, r), data: { ...r, expectedHashes, fences } };
  },
});

export const history = tool({
  name: 'history',
  description:
    'The program\'s history: "list" committed revisions (who, when, which functions), "diff" what changed ' +
    'between two revisions (from, to), or "undo" one revision (as a new revision; needs the same write locks ' +
    'as the edit it undoes, whose fences are added by default).',
  input: HistoryInput,
  async run(args, ctx) {
    const program = args.program ?? DEFAULT_PROGRAM;
    const c = ctx.client;
    if (args.action === 'list') {
      const { revisions } = await c.history.list({
        program,
        ...(args.after === undefined ? {} : { after: args.after }),
        ...(args.limit === undefined ? {} : { limit: args.limit }),
      });
      const lines = revisions.map(
        (r) =>
          `- r${r.revision} ${r.kind} by ${r.by.name} at ${r.at}: ${r.ops} op(s) on ${r.functions.join(', ') || '-'}`,
      );
      return { text: [`${revisions.length} revision(s):`, ...lines].join('\n'), data: { revisions } };
    }
    if (args.action === 'diff') {
      if (args.from === undefined || args.to === undefined) throw missing('diff needs from and to');
      const d = await c.history.diff({ program, from: args.from, to: args.to });
      const lines = d.functions.map((f) => `- ${f.name} (id ${f.id}) ${f.status}: ${diffText(f.diff)}`);
      return { text: [`from r${d.from} to r${d.to}:`, ...lines].join('\n'), data: d };
    }
    if (args.revision === undefined) throw missing('undo needs revision');
    const held = c.held().filter((g) => g.resource.program === program && g.mode === 'write');
    const fences = Object.fromEntries(
      held.flatMap((g) =>
        'path' in g.resource ? [] : [['structure' in g.resource ? 'structure' : String(g.resource.function), g.fence]],
      ),
    );
    const r = await c.history.undo({ program, revision: args.revision, fences });
    return { text: committed(ctx, program, r), data: r };
  },
});

function missing(message: string): LockstepClientError {
  return new LockstepClientError({ type: 'INVALID_PARAMS', code: RpcCode.INVALID_PARAMS, message, retryable: false });
}
