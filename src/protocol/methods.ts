import { z } from 'zod';
import { DEFAULT_PROGRAM, LimitsWire, LockDefaultsWire } from './limits.ts';
import { EditOps, FunctionBody, FunctionDiff } from './program.ts';
import { LockPath } from './path.ts';
import { FunctionId, LockMode, ProgramName, Resource } from './resource.ts';
import { Text } from './text.ts';
import {
  By,
  GitObjectId,
  Grant,
  Hash,
  IsoTime,
  NotRestored,
  PathContent,
  QueuePosition,
  NAMES_SOMETHING,
  namesSomething,
  ResourceSelector,
  Role,
  SessionId,
  Ticket,
} from './wire.ts';

// Every method's params and result. The server validates params with these before any handler
// runs, the JSON Schema in docs/ is generated from them, and the client SDK types come from them.

export const PROTOCOL_VERSION = 1;

const program = ProgramName.optional().describe(`Program name; default "${DEFAULT_PROGRAM}"`);
const Empty = z.object({}).strict();

const HelloParams = z.strictObject({
  protocol: z.literal(PROTOCOL_VERSION).describe('Protocol version; this server speaks 1'),
  name: Text(1, 64).optional().describe('Display name; default agent-<id prefix>'),
  role: Role.optional().describe('Default "agent"; observers may not lock or edit'),
  token: Text(0, 1024).optional().describe('Access token, when the server requires one'),
  resume: z
    .strictObject({ sessionId: SessionId, secret: Text(1, 256) })
    .optional()
    .describe('Take back a dropped session within the resume grace'),
});

const HelloResult = z.object({
  sessionId: SessionId,
  name: z.string(),
  role: Role,
  protocol: z.literal(PROTOCOL_VERSION),
  server: z.object({ name: z.literal('lockstep'), version: z.string() }),
  heartbeatMs: z.number().int(),
  lock: LockDefaultsWire,
  limits: LimitsWire,
  resumeSecret: z.string().optional().describe('Present when resume grace is on: keep it to resume'),
  resumed: z.boolean().optional().describe('True when this hello took back a dropped session'),
  restored: z
    .array(Grant)
    .optional()
    .describe(
      'Cluster, after a failover: the locks this resume got back on the new leader, each with its fence and what was left of its lease',
    ),
  notRestored: z
    .array(NotRestored)
    .optional()
    .describe(
      'Cluster, after a failover, with `restored`: the locks recorded for this session that the new leader did not give back, and why',
    ),
  graceMs: z.number().int().optional(),
});

const AgentInfo = z.object({
  sessionId: SessionId,
  name: z.string(),
  role: Role,
  state: z.enum(['connected', 'detached']),
  connectedAt: IsoTime,
  lastActiveAt: IsoTime,
  locks: z.array(Grant),
  waiting: z.array(z.object({ ticket: Ticket, mode: LockMode, positions: z.array(QueuePosition) })),
});

const AcquireParams = z
  .strictObject({
    ...ResourceSelector,
    mode: LockMode,
    ttlMs: z.number().int().positive().optional().describe('Lease length; clamped to [minTtlMs, maxTtlMs]'),
    description: Text(0, 1024)
      .optional()
      .describe('What the lock is for, shown to others (at most limits.maxDescription characters)'),
    wait: z.boolean().optional().describe('Queue when not grantable now (default false: LOCK_DENIED)'),
    waitTimeoutMs: z.number().int().positive().optional().describe('Give up waiting after this long'),
    key: Text(1, 128).optional().describe('Idempotency key: a retry returns the first outcome'),
  })
  .refine(namesSomething, { message: NAMES_SOMETHING });

const AcquireResult = z.discriminatedUnion('status', [
  z.object({ status: z.literal('granted'), grants: z.array(Grant) }),
  z.object({ status: z.literal('queued'), ticket: Ticket, positions: z.array(QueuePosition) }),
]);

const SelectParams = z.strictObject(ResourceSelector).refine(namesSomething, { message: NAMES_SOMETHING });

const ReleaseParams = z
  .strictObject({
    ...ResourceSelector,
    contents: z
      .array(PathContent)
      .max(1000)
      .optional()
      .describe(
        'What paths under a write lock the session holds now contain, recorded for paths.check (docs/protocol.md, "Paths")',
      ),
  })
  .refine(namesSomething, { message: NAMES_SOMETHING });

const PathsCheckParams = z.strictObject({
  program,
  session: SessionId.describe("The committing agent's session id (never a name)"),
  changes: z
    .array(
      z.strictObject({
        path: LockPath,
        base: GitObjectId.nullable().describe('The blob id the change was made on; null for a new file'),
      }),
    )
    .max(1000),
});

const PathsCheckResult = z.object({
  program: ProgramName,
  session: SessionId,
  changes: z.array(
    z.object({
      path: z.string(),
      held: z.boolean().describe('A write lock covering the path is held now by exactly that session'),
      fence: z.number().int().optional().describe('The fence of that lock, when held'),
      holders: z
        .array(
          z.object({
            sessionId: SessionId,
            name: z.string(),
            mode: LockMode,
            path: z.string().describe('The path of the lock: this one, one above it or one below it'),
            description: z.string().optional().describe("The lock's description, as its holder gave it"),
            expiresAt: IsoTime,
          }),
        )
        .describe('Other sessions holding locks a write lock on the path would wait for'),
      queueLength: z.number().int().describe('Tickets a write request on the path would queue behind'),
      recorded: z
        .object({
          blob: GitObjectId.nullable().describe('null: the holder recorded the path as deleted'),
          commit: GitObjectId.optional(),
          sessionId: SessionId,
          name: z.string(),
          at: IsoTime,
        })
        .optional()
        .describe(
          "The path's last recorded content, when its blob differs from `base` (a deletion recorded and `base: null` do not differ)",
        ),
    }),
  ),
});

const RenewParams = z
  .strictObject({ ...ResourceSelector, ttlMs: z.number().int().positive().optional() })
  .refine(namesSomething, { message: NAMES_SOMETHING });

const ResourceStatus = z.object({
  resource: Resource,
  holders: z.array(
    z.object({
      sessionId: SessionId,
      name: z.string().optional(),
      mode: LockMode,
      fence: z.number().int(),
      grantedAt: IsoTime,
      expiresAt: IsoTime,
      description: z.string().optional(),
    }),
  ),
  queue: z.array(
    z.object({
      ticket: Ticket,
      sessionId: SessionId,
      name: z.string().optional(),
      mode: LockMode,
      position: z.number().int().positive(),
      upgrade: z.boolean(),
      description: z.string().optional(),
    }),
  ),
});

const FunctionSummary = z.object({
  id: FunctionId,
  name: z.string(),
  hash: Hash,
  version: z.number().int().positive(),
});

const FunctionLockState = z
  .object({
    mode: LockMode.nullable().describe("The holders' mode; null when nobody holds it but requests wait"),
    holders: z.array(z.object({ sessionId: SessionId, name: z.string().optional() })),
    queued: z.number().int(),
  })
  .nullable()
  .describe('Who holds the function and how many wait; null when nobody holds or awaits it');

const ExpectedHashes = z
  .record(z.string().regex(/^[1-9][0-9]*$/, 'keys are function ids'), Hash)
  .describe('Function id -> the hash the edit was based on');
const Fences = z
  .record(z.string().regex(/^([1-9][0-9]*|structure)$/, 'keys are function ids or "structure"'), z.number().int())
  .describe('Function id or "structure" -> the fence token of the write lock relied on');

const EditResult = z.object({
  revision: z.number().int(),
  functions: z.array(FunctionSummary).describe('Every function the edit changed or created, as it is now'),
  created: z.array(z.object({ name: z.string(), id: FunctionId })),
  removed: z.array(FunctionId),
});

const RevisionInfo = z.object({
  revision: z.number().int(),
  at: IsoTime,
  by: By,
  kind: z.enum(['edit', 'undo', 'redo', 'restore']),
  ops: z.number().int(),
  functions: z.array(FunctionId),
  undoes: z.number().int().optional(),
  redoes: z.number().int().optional(),
  checkpoint: z.string().optional(),
  note: z.string().optional(),
});

export const Topic = z.enum(['agents', 'locks', 'edits']);
export const EventItem = z.object({
  seq: z.number().int().positive().describe('Server-wide, strictly increasing'),
  time: IsoTime,
  topic: Topic,
  type: z.string().describe('e.g. joined, left, granted, released, expired, queued, dequeued, denied, committed'),
  data: z.record(z.string(), z.unknown()),
});

const EditKey = Text(1, 128)
  .optional()
  .describe('Idempotency key, unique (a UUID): a retry, even after a restart, returns the first result');

const HistoryWriteParams = {
  program,
  expectedHashes: ExpectedHashes.optional(),
  fences: Fences.optional(),
  key: EditKey,
};

function method<P extends z.ZodType, R extends z.ZodType>(summary: string, params: P, result: R) {
  return { summary, params, result };
}

export const methods = {
  'session.hello': method('Open the session: must be the first call', HelloParams, HelloResult),
  'session.ping': method('Application-level liveness', Empty, z.object({ time: IsoTime })),
  'agent.list': method(
    'Connected sessions with their locks and waits',
    Empty,
    z.object({ agents: z.array(AgentInfo) }),
  ),
  'lock.acquire': method(
    'Lock functions, paths and/or the structure of one program, all or nothing',
    AcquireParams,
    AcquireResult,
  ),
  'lock.release': method(
    'Release the named locks (all or nothing: NOT_HELD changes nothing)',
    ReleaseParams,
    z.object({ released: z.array(Resource) }),
  ),
  'lock.releaseAll': method('Release every lock the session holds', Empty, z.object({ released: z.array(Resource) })),
  'lock.renew': method(
    'Extend the lease of held locks; the fence stays',
    RenewParams,
    z.object({ grants: z.array(Grant) }),
  ),
  'lock.downgrade': method(
    'Turn held write locks into read locks; the fence stays',
    SelectParams,
    z.object({ grants: z.array(Grant) }),
  ),
  'lock.cancel': method(
    "Withdraw one of the session's queued requests",
    z.strictObject({ ticket: Ticket }),
    z.object({ ticket: Ticket, cancelled: z.literal(true) }),
  ),
  'lock.status': method(
    'Every held or awaited resource, with holders and queue',
    z.strictObject({ program }),
    z.object({ resources: z.array(ResourceStatus) }),
  ),
  'paths.check': method(
    "Whether a session holds write locks covering changed paths now, and each path's last recorded content",
    PathsCheckParams,
    PathsCheckResult,
  ),
  'program.list': method(
    'All programs',
    Empty,
    z.object({
      programs: z.array(z.object({ name: ProgramName, revision: z.number().int(), functions: z.number().int() })),
    }),
  ),
  'program.create': method(
    'Create an empty program',
    z.strictObject({ name: ProgramName }),
    z.object({ name: ProgramName, revision: z.number().int() }),
  ),
  'program.delete': method(
    'Delete a program: needs its structure write lock and no other session holding locks in it',
    z.strictObject({ program: ProgramName }),
    z.object({ deleted: ProgramName }),
  ),
  'program.get': method(
    'Program overview: functions with hash, version and lock state',
    z.strictObject({ program }),
    z.object({
      name: ProgramName,
      revision: z.number().int(),
      functions: z.array(FunctionSummary.extend({ lock: FunctionLockState })),
    }),
  ),
  'function.get': method(
    'One function in full',
    z.strictObject({ program, function: FunctionId }),
    z.object({ function: FunctionBody, hash: Hash, version: z.number().int().positive() }),
  ),
  'function.watch': method(
    'Be told (function.changed) when these functions change',
    z.strictObject({ program, functions: z.array(FunctionId).min(1).max(1000) }),
    z.object({ program: ProgramName, watching: z.array(FunctionId) }),
  ),
  'function.unwatch': method(
    'Stop watching these functions',
    z.strictObject({ program, functions: z.array(FunctionId).min(1).max(1000) }),
    z.object({ program: ProgramName, watching: z.array(FunctionId) }),
  ),
  'edit.apply': method(
    "Apply an atomic edit under the session's write locks",
    z.strictObject({
      program,
      ops: EditOps,
      expectedHashes: ExpectedHashes.optional(),
      fences: Fences.optional(),
      key: EditKey,
    }),
    EditResult,
  ),
  'history.list': method(
    'Committed revisions, oldest first',
    z.strictObject({
      program,
      after: z.number().int().nonnegative().optional().describe('Only revisions after this one'),
      limit: z.number().int().positive().max(1000).optional().describe('Default 100'),
    }),
    z.object({ revisions: z.array(RevisionInfo) }),
  ),
  'history.diff': method(
    'What changed between two revisions',
    z.strictObject({ program, from: z.number().int().nonnegative(), to: z.number().int().nonnegative() }),
    z.object({
      from: z.number().int(),
      to: z.number().int(),
      functions: z.array(
        z.object({
          id: FunctionId,
          name: z.string(),
          status: z.enum(['added', 'removed', 'modified']),
          diff: FunctionDiff,
        }),
      ),
    }),
  ),
  'history.undo': method(
    'Undo a revision, as a new revision, under the same checks as an edit',
    z.strictObject({ ...HistoryWriteParams, revision: z.number().int().positive() }),
    EditResult,
  ),
  'history.redo': method(
    'Redo what an undo revision undid, as a new revision',
    z.strictObject({ ...HistoryWriteParams, revision: z.number().int().positive() }),
    EditResult,
  ),
  'checkpoint.create': method(
    'Name the current revision',
    z.strictObject({ program, name: Text(1, 64) }),
    z.object({ name: z.string(), revision: z.number().int(), at: IsoTime }),
  ),
  'checkpoint.list': method(
    'Named checkpoints',
    z.strictObject({ program }),
    z.object({ checkpoints: z.array(z.object({ name: z.string(), revision: z.number().int(), at: IsoTime, by: By })) }),
  ),
  'checkpoint.restore': method(
    'Bring the program back to a checkpoint, as a new revision',
    z.strictObject({ ...HistoryWriteParams, name: Text(1, 64) }),
    EditResult,
  ),
  'events.subscribe': method(
    'Subscribe to event topics, replaying from a sequence number',
    z.strictObject({
      topics: z.array(Topic).min(1),
      since: z.number().int().nonnegative().optional().describe('Replay buffered events after this sequence number'),
      runId: Text(0, 64).optional().describe('The runId `since` belongs to; another run means resync'),
    }),
    z.object({
      topics: z.array(Topic),
      seq: z.number().int().describe('Last sequence number issued'),
      replayed: z.number().int(),
      truncated: z
        .boolean()
        .describe(
          'True when events after `since` are not all here (dropped, or from another run): resync from lock.status and program.get',
        ),
      oldest: z.number().int().describe('Oldest sequence number still buffered (0 when empty)'),
      runId: z.string().describe('This run of the server; sequence numbers restart with each run'),
    }),
  ),
  'events.unsubscribe': method(
    'Stop receiving event topics (all when none named)',
    z.strictObject({ topics: z.array(Topic).optional() }),
    z.object({ topics: z.array(Topic) }),
  ),
} as const;

export type MethodName = keyof typeof methods;
export type ParamsOf<M extends MethodName> = z.infer<(typeof methods)[M]['params']>;
export type ResultOf<M extends MethodName> = z.infer<(typeof methods)[M]['result']>;
export const METHOD_NAMES = Object.keys(methods) as MethodName[];

export type Topic = z.infer<typeof Topic>;
export type EventItem = z.infer<typeof EventItem>;
