import { changedContents, headCommit, uncommitted } from '../client/git.ts';
import type { Grant } from '../client/index.ts';
import { isLockstepError } from '../client/errors.ts';
import { LockstepClientError } from '../client/index.ts';
import { freePathLabel, pathTree, pathTreeLines } from '../client/path-tree.ts';
import { RpcCode } from '../protocol/errors.ts';
import { pathProblem } from '../protocol/path.ts';
import { isPath, type PathResource } from '../protocol/resource.ts';
import { coveringPaths } from './path-globs.ts';
import { releasedLine, waitersText } from './render.ts';
import { acquireFor, grantedOutcome, type ToolContext, tool } from './tool.ts';
import { PathLockInput, PathReleaseInput, PathStatusInput } from './tool-schemas.ts';

/** The paths that cover what the agent named (path-globs.ts); refused when one covers the whole repository or breaks the path rules. */
function pathsFor(patterns: readonly string[]): { paths: string[]; widened: string[] } {
  const c = coveringPaths(patterns);
  const bad = c.paths.flatMap((p) => {
    const problem = pathProblem(p);
    return problem === undefined ? [] : [`${JSON.stringify(p)}: ${problem}`];
  });
  if (c.unbounded.length > 0)
    bad.push(
      ...c.unbounded.map(
        (u) =>
          `${JSON.stringify(u)} would cover the whole repository: name the directory it is in ("src/**/*.ts" is locked as "src")`,
      ),
    );
  if (bad.length > 0)
    throw new LockstepClientError({
      type: 'INVALID_PARAMS',
      code: RpcCode.INVALID_PARAMS,
      message: `cannot lock ${bad.join('; ')}`,
      retryable: false,
      data: { patterns },
    });
  return {
    paths: c.paths,
    widened: c.widened.map((w) => `${w.pattern} is locked as ${w.paths.join(', ')}`),
  };
}

/** The path locks this session holds in `program`. */
function heldPaths(ctx: ToolContext, program: string): Array<Grant & { resource: PathResource }> {
  return ctx.client
    .held()
    .filter((g): g is Grant & { resource: PathResource } => g.resource.program === program && isPath(g.resource));
}

export const pathLock = tool({
  name: 'path_lock',
  description:
    'Lock files or directories of the repository before you change them ("write"), or to keep them from changing ' +
    'while you rely on them ("read"). A lock on a directory covers everything below it; a glob is locked as the ' +
    'directory of its literal leading segments ("src/**/*.ts" locks "src"). By default waits its turn in a fair ' +
    'FIFO queue, reporting the queue position as progress, and returns once granted. The git pre-commit guard ' +
    'refuses a commit of files you do not hold a write lock on. Commit, then release (path_release) as soon as ' +
    'you are done: others may be waiting (you are told).',
  input: PathLockInput,
  async run(args, ctx) {
    const program = args.program ?? ctx.pathProgram;
    const { paths, widened } = pathsFor(args.paths);
    const lock = await acquireFor(ctx, program, args, { paths });
    // What the repository was at when the lock was granted: the files changed from here are recorded at the release.
    if (ctx.repo !== undefined) {
      const head = headCommit(ctx.repo);
      for (const g of lock.grants) if (g.mode === 'write') ctx.state.setBase(g.resource, g.fence, head);
    }
    return grantedOutcome(ctx, program, lock, widened, { paths });
  },
});

export const pathRelease = tool({
  name: 'path_release',
  description:
    'Release path locks you hold: the named ones (as you locked them), or all of them. Commit first: by default ' +
    'the files your commits changed under released write locks are recorded with the release, so that the guard ' +
    'refuses a later commit of an older copy of them; uncommitted changes are not recorded (you are warned). ' +
    'The next agent in the queue is granted at once.',
  input: PathReleaseInput,
  async run(args, ctx) {
    const program = args.program ?? ctx.pathProgram;
    const held = heldPaths(ctx, program);
    const named = args.paths === undefined ? undefined : new Set(pathsFor(args.paths).paths);
    const release = held.filter((g) => named === undefined || named.has(g.resource.path));
    if (release.length === 0)
      return { text: 'released nothing: you hold no such path lock', data: { released: [], contents: [] } };
    const writes = release.filter((g) => g.mode === 'write');
    const contents = args.record === false || ctx.repo === undefined ? [] : recorded(ctx, ctx.repo, writes);
    const dirty =
      ctx.repo === undefined
        ? []
        : uncommitted(
            ctx.repo,
            writes.map((g) => g.resource.path),
          );
    const { released } = await ctx.client.lock.release({
      program,
      paths: release.map((g) => g.resource.path),
      ...(contents.length > 0 ? { contents } : {}),
    });
    for (const g of release) ctx.state.forgetBase(g.resource, g.fence);
    const lines = [releasedLine(released, ctx.names(program))];
    if (contents.length > 0) {
      // A deletion is recorded too (the guard then names the file as deleted): say so, or the agent reads it as an edit.
      const deleted = contents.filter((c) => c.blob === null).length;
      const ofThem = deleted === 0 ? '' : `, ${deleted} of them deleted,`;
      lines.push(`recorded ${contents.length} changed file(s)${ofThem} as of commit ${contents[0]?.commit}`);
    }
    if (dirty.length > 0)
      lines.push(
        `warning: uncommitted changes under what you released, not recorded and no longer covered by your lock: ${dirty.join(', ')}`,
      );
    return { text: lines.join('\n'), data: { released, contents, uncommitted: dirty } };
  },
});

/** The files changed since each write lock's grant, as of HEAD: what its release records. */
function recorded(ctx: ToolContext, repo: string, writes: ReadonlyArray<Grant & { resource: PathResource }>) {
  const bySince = new Map<string | undefined, string[]>();
  for (const g of writes) {
    const base = ctx.state.baseOf(g.resource, g.fence);
    // A lock granted outside this bridge (none recorded) has no known start: nothing is claimed for it.
    if (base === undefined) continue;
    const since = base.head;
    const list = bySince.get(since);
    if (list === undefined) bySince.set(since, [g.resource.path]);
    else list.push(g.resource.path);
  }
  return [...bySince].flatMap(([since, paths]) => changedContents(repo, since, paths));
}

export const pathStatus = tool({
  name: 'path_status',
  description:
    "The program's path locks as a tree: who holds each (mode, since when), who waits in which order, and which " +
    'of them are yours (held, or in doubt while the connection is being restored). Needs no lock.',
  input: PathStatusInput,
  async run(args, ctx) {
    const program = args.program ?? ctx.pathProgram;
    const resources = await statusOf(ctx, program);
    if (resources === undefined)
      return { text: `no path locks in ${program} yet`, data: { program, locks: [], held: [], suspended: false } };
    const me = ctx.client.sessionId;
    const entries = resources.flatMap((r) => (isPath(r.resource) ? [{ path: r.resource.path, lock: r }] : []));
    const held = entries.filter((e) => e.lock.holders.length > 0).map((e) => e.path);
    const describe = (r: (typeof entries)[number]['lock']) => {
      const holders = r.holders.map(
        (h) => `${h.sessionId === me ? 'you' : (h.name ?? h.sessionId)} ${h.mode} #${h.fence}`,
      );
      // Positions as `lockstep status` writes them: "#" is a fence's.
      const queue = r.queue.map(
        (q) => `${q.position}. ${q.sessionId === me ? 'you' : (q.name ?? q.sessionId)} ${q.mode}`,
      );
      return [
        holders.length === 0 ? freePathLabel((r.resource as PathResource).path, held) : `held by ${holders.join(', ')}`,
        ...(queue.length === 0 ? [] : [`queue: ${queue.join(', ')}`]),
      ].join('; ');
    };
    const tree = pathTreeLines(pathTree(entries), describe);
    const mine = heldPaths(ctx, program).map(
      (g) =>
        `- ${g.mode} lock on ${g.resource.path}, fence ${g.fence}: ${ctx.client.suspended ? 'in doubt (reconnecting)' : 'held'}` +
        waitersText(ctx.state.waitersOf(g.resource)),
    );
    return {
      text: [
        `path locks of program ${program} (${entries.length}):`,
        ...(tree.length === 0 ? ['  none'] : tree.map((l) => `  ${l}`)),
        `yours (${mine.length}):`,
        ...mine,
      ].join('\n'),
      data: {
        program,
        locks: entries.map((e) => e.lock),
        held: heldPaths(ctx, program),
        suspended: ctx.client.suspended,
      },
    };
  },
});

/** The program's locks; undefined for a program the server does not know yet (nobody has locked a path there). */
async function statusOf(ctx: ToolContext, program: string) {
  try {
    return (await ctx.client.lock.status({ program })).resources;
  } catch (err) {
    if (isLockstepError(err, 'NOT_FOUND') && (err.data as { program?: string }).program === program) return undefined;
    throw err;
  }
}
