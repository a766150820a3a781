import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import { acquireFor, grantedOutcome, resolveFunctions, tool } from './tool.ts';
import { releasedLine } from './render.ts';
import { LockAcquireInput, LockReleaseInput } from './tool-schemas.ts';

export const lockAcquire = tool({
  name: 'lock_acquire',
  description:
    'Lock functions (by id or name) before you edit them ("write") or to keep them from changing while you rely ' +
    'on them ("read"); the structure lock is needed to add, remove or rename functions. By default waits its ' +
    'turn in a fair FIFO queue, reporting the queue position as progress, and returns once granted: the grants ' +
    'with their fences (edit_apply uses them by default). With wait: false it fails at once when the lock is ' +
    'taken, naming who holds it and what they are doing. Locks are kept alive while you keep calling tools; ' +
    'release them (lock_release) as soon as you are done.',
  input: LockAcquireInput,
  async run(args, ctx) {
    const program = args.program ?? DEFAULT_PROGRAM;
    const functions = await resolveFunctions(ctx, program, args.functions);
    const lock = await acquireFor(ctx, program, args, {
      ...(functions === undefined ? {} : { functions }),
      ...(args.structure === undefined ? {} : { structure: args.structure }),
    });
    return grantedOutcome(ctx, program, lock);
  },
});

export const lockRelease = tool({
  name: 'lock_release',
  description:
    'Release locks you hold: the named functions (by id or name) and/or the structure lock, or everything ' +
    '(all: true, or nothing named). Waiting agents are granted at once. Returns what was released.',
  input: LockReleaseInput,
  async run(args, ctx) {
    const program = args.program ?? DEFAULT_PROGRAM;
    const functions = await resolveFunctions(ctx, program, args.functions);
    const everything = args.all === true || (functions === undefined && args.structure !== true);
    const { released } = everything
      ? await ctx.client.lock.releaseAll()
      : await ctx.client.lock.release({
          program,
          ...(functions === undefined ? {} : { functions }),
          ...(args.structure === undefined ? {} : { structure: args.structure }),
        });
    return {
      text: released.length === 0 ? 'released nothing: you held no locks' : releasedLine(released, ctx.names(program)),
      data: { released },
    };
  },
});
