import { z } from 'zod';
import { DEFAULT_PROGRAM } from './limits.ts';
import { LockPath } from './path.ts';
import { FunctionId, LockMode, ProgramName, Resource } from './resource.ts';
import { Text } from './text.ts';

// Shapes shared by several methods and notifications.

export const IsoTime = z.string().describe('ISO-8601 UTC time, e.g. 2026-11-27T09:00:00.000Z');
export const SessionId = z.string().uuid().describe('Session id (UUID v4)');
export const Ticket = Text(1, 64).describe('Queued request ticket');
export const Hash = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'a hash is 64 lowercase hex characters')
  .describe('blake3-256 content hash, lowercase hex');
export const Role = z.enum(['agent', 'observer']);
export const GitObjectId = z
  .string()
  .regex(/^([0-9a-f]{40}|[0-9a-f]{64})$/, 'a git object id is 40 or 64 lowercase hex characters')
  .describe('A git object id (SHA-1 or SHA-256), lowercase hex');

/** One path's content as a releasing holder records it (lock.release `contents`). */
export const PathContent = z.strictObject({
  path: LockPath,
  blob: GitObjectId.nullable().describe("The path's git blob id as the holder leaves it; null: it deleted the path"),
  commit: GitObjectId.optional().describe('The commit that has it (or, for a deleted path, that no longer has it)'),
});

export const Grant = z
  .object({
    resource: Resource,
    mode: LockMode,
    fence: z.number().int().describe('Fencing token: strictly increasing per program'),
    expiresAt: IsoTime,
  })
  .describe('A held lock');

export const NotRestored = z
  .object({
    resource: Resource,
    mode: LockMode,
    fence: z.number().int(),
    reason: z
      .enum(['expired', 'fence-moved', 'resource-gone'])
      .describe(
        'expired: its lease had run out; fence-moved: a newer grant of the resource was recorded or has written it; resource-gone: its function or program no longer exists',
      ),
  })
  .describe('A lock the previous leader recorded for the session that a new leader did not give back');

export const QueuePosition = z.object({
  resource: Resource,
  position: z.number().int().positive().describe('1 means next'),
});

export const Holder = z.object({
  sessionId: SessionId,
  name: z.string().optional(),
  mode: LockMode,
  description: z.string().optional(),
  expiresAt: IsoTime,
});

/** Selects resources of one program, as lock.release / renew / downgrade take them. */
export const ResourceSelector = {
  program: ProgramName.optional().describe(`Program name; default "${DEFAULT_PROGRAM}"`),
  functions: z.array(FunctionId).max(1000).optional().describe('Function ids'),
  structure: z.boolean().optional().describe("The program's structure lock"),
  paths: z
    .array(LockPath)
    .max(1000)
    .optional()
    .describe('Paths (docs/protocol.md, "Paths"); a lock on a path covers everything below it'),
};

export const NAMES_SOMETHING = 'name at least one function, path or structure: true';

/** The refinement of every selector: at least one function or path, or the structure. */
export function namesSomething(p: {
  functions?: unknown[] | undefined;
  paths?: unknown[] | undefined;
  structure?: boolean | undefined;
}): boolean {
  return (p.functions?.length ?? 0) > 0 || (p.paths?.length ?? 0) > 0 || p.structure === true;
}

export const By = z.object({ sessionId: z.string(), name: z.string() });

export type Grant = z.infer<typeof Grant>;
export type QueuePosition = z.infer<typeof QueuePosition>;
export type NotRestored = z.infer<typeof NotRestored>;
