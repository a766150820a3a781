import { z } from 'zod';
import { methods } from '../protocol/methods.ts';
import { FunctionName } from '../protocol/program.ts';
import { FunctionId } from '../protocol/resource.ts';

// The tools' inputs, built from the protocol's own zod schemas (the same fields, limits and
// descriptions the server validates), with what the bridge adds: functions by name, defaults.

const acquire = methods['lock.acquire'].params.shape;
const edit = methods['edit.apply'].params.shape;
const historyList = methods['history.list'].params.shape;
const historyDiff = methods['history.diff'].params.shape;
const historyUndo = methods['history.undo'].params.shape;

const program = acquire.program;
const FunctionRef = z.union([FunctionId, FunctionName]).describe('A function, by id or by name');
const FunctionRefs = z.array(FunctionRef).min(1).max(1000);

export const ProgramOverviewInput = z.strictObject({ program });

export const FunctionReadInput = z.strictObject({
  program,
  functions: FunctionRefs.describe('The functions to read, by id or name'),
});

/** How a lock tool waits, the same for functions and paths. */
const waiting = {
  ttlMs: acquire.ttlMs,
  wait: z
    .boolean()
    .optional()
    .describe('Wait your turn in the queue (default true); false: fail at once, naming who holds it'),
  timeoutMs: acquire.waitTimeoutMs.describe('Give up waiting after this many milliseconds'),
  description: acquire.description.describe('What you are about to do, shown to the other agents'),
};

export const LockAcquireInput = z.strictObject({
  program,
  functions: FunctionRefs.optional().describe('Functions to lock, by id or name'),
  structure: acquire.structure.describe(
    "The program's structure lock: needed to add, remove or rename functions (write mode)",
  ),
  mode: acquire.mode.describe('"write" to edit (exclusive), "read" to keep others from changing what you read'),
  ...waiting,
});

export const LockReleaseInput = z.strictObject({
  program,
  functions: FunctionRefs.optional().describe('Functions to release, by id or name'),
  structure: acquire.structure,
  all: z.boolean().optional().describe('Release every lock you hold (also when nothing else is named)'),
});

const PathPatterns = z
  .array(z.string().min(1).max(1024))
  .min(1)
  .max(1000)
  .describe(
    'Paths relative to the repository top: a file ("src/app/main.ts"), a directory ("src" or "src/": covers ' +
      'everything below it), or a glob ("src/**", "src/*.ts", "src/{a,b}/*.ts"), which is locked as the ' +
      'directory of its literal leading segments ("src")',
  );

export const PathLockInput = z.strictObject({
  program: acquire.program.describe(
    "The namespace of the repository's paths; default: the bridge's --program (normally left out)",
  ),
  paths: PathPatterns,
  mode: acquire.mode.describe(
    '"write" to change files (exclusive; what the git guard checks), "read" to keep them from changing',
  ),
  ...waiting,
});

export const PathReleaseInput = z.strictObject({
  program: acquire.program,
  paths: PathPatterns.optional().describe(
    'Path locks to release, named as you locked them; default: all your path locks',
  ),
  record: z
    .boolean()
    .optional()
    .describe(
      'Record the files your commits changed under released write locks (default true), so that a commit of ' +
        'an older copy of them is refused by the git guard',
    ),
});

export const PathStatusInput = z.strictObject({ program: acquire.program });

export const EditApplyInput = z.strictObject({
  program,
  ops: edit.ops,
  expectedHashes: edit.expectedHashes.describe(
    'Function id -> hash your edit is based on. Default: the hashes of what you last read (function_read) or wrote',
  ),
  fences: edit.fences.describe('Function id or "structure" -> fence. Default: the fences of the write locks you hold'),
});

export const HistoryInput = z.strictObject({
  program,
  action: z
    .enum(['list', 'diff', 'undo'])
    .describe('"list" revisions, "diff" two revisions (from, to), "undo" one revision (needs its write locks)'),
  after: historyList.after,
  limit: historyList.limit,
  from: historyDiff.from.optional().describe('diff: the older revision'),
  to: historyDiff.to.optional().describe('diff: the newer revision'),
  revision: historyUndo.revision.optional().describe('undo: the revision to undo'),
});

export type ProgramOverviewArgs = z.infer<typeof ProgramOverviewInput>;
export type FunctionReadArgs = z.infer<typeof FunctionReadInput>;
export type LockAcquireArgs = z.infer<typeof LockAcquireInput>;
export type LockReleaseArgs = z.infer<typeof LockReleaseInput>;
export type PathLockArgs = z.infer<typeof PathLockInput>;
export type PathReleaseArgs = z.infer<typeof PathReleaseInput>;
export type EditApplyArgs = z.infer<typeof EditApplyInput>;
export type HistoryArgs = z.infer<typeof HistoryInput>;
