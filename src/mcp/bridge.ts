import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { isLockstepError, toClientError } from '../client/errors.ts';
import type { LockstepClient, LossReason } from '../client/index.ts';
import type { Grant } from '../protocol/wire.ts';
import { VERSION } from '../version.ts';
import { AgentState } from './agent-state.ts';
import { lockAcquire, lockRelease } from './lock-tools.ts';
import { pathLock, pathRelease, pathStatus } from './path-tools.ts';
import { editApply, functionRead, history, programOverview } from './program-tools.ts';
import { errorText, label } from './render.ts';
import type { ServerLink } from './server-link.ts';
import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import { resourceKey } from '../protocol/resource.ts';
import { selector } from '../client/selectors.ts';
import type { Tool, ToolContext } from './tool.ts';

const TOOLS: readonly Tool[] = [
  programOverview,
  functionRead,
  lockAcquire,
  lockRelease,
  editApply,
  history,
  pathLock,
  pathRelease,
  pathStatus,
];

const INSTRUCTIONS =
  'Lockstep coordinates you with other agents editing the same program or repository. For a program: look ' +
  'first (program_overview), read what you will change (function_read), lock it (lock_acquire, which waits its ' +
  'turn), edit (edit_apply), and release (lock_release) as soon as you are done. For files of a repository: ' +
  'lock the files or directories you will change (path_lock, which waits its turn), pull, edit, commit, then ' +
  'release them (path_release); path_status shows who holds what. Results start with what happened since your last call.';

export interface BridgeOptions {
  /** The git working tree the agent works in (for the path tools and the guard's session file); undefined outside one. */
  repo: string | undefined;
  /** The program the path tools lock in when the agent names none. */
  pathProgram: string;
  /** After this long without a tool call the agent's leases are no longer renewed. */
  idleReleaseMs: number;
  /** How often a waiting lock tool tells its unchanged queue position again (tool.ts, acquireFor). */
  progressEveryMs: number;
  /** One line for the operator (stderr: stdout is the MCP protocol's). */
  log(line: string): void;
}

/**
 * One MCP server for one agent over one Lockstep session: the tools, the agent's memory of what
 * it read, lease renewal while it is active, and pushes turned into notices. The tools are served
 * whether or not the session is open (server-link.ts).
 */
export function createBridge(link: ServerLink, o: BridgeOptions): McpServer {
  const client = link.client;
  const server = new McpServer(
    { name: 'lockstep', version: VERSION },
    { capabilities: { logging: {} }, instructions: INSTRUCTIONS },
  );
  const state = new AgentState(o.idleReleaseMs);
  const names = new Map<string, Map<number, string>>();
  const namesOf = (program: string) => {
    const known = names.get(program);
    if (known !== undefined) return known;
    const fresh = new Map<number, string>();
    names.set(program, fresh);
    return fresh;
  };
  const lockText = (locks: readonly Pick<Grant, 'mode' | 'resource'>[]) =>
    locks.map((l) => `${l.mode} lock on ${label(l.resource, namesOf(l.resource.program))}`).join(', ');
  const tell = (level: 'info' | 'warning', text: string) => {
    o.log(text);
    server.sendLoggingMessage({ level, logger: 'lockstep', data: text }).catch(() => undefined);
  };
  const notify = (level: 'info' | 'warning', text: string, key?: string) => {
    state.notice(text, key);
    tell(level, text);
  };

  // Only the latest count per lock reaches the next result, and none once nobody waits any more.
  client.on('lock.waiters', ({ locks }) => {
    for (const l of locks) {
      state.setWaiters(l.resource, l.waiting, l.oldestWaitMs);
      const key = `waiters\u0000${resourceKey(l.resource)}`;
      if (l.waiting > 0)
        notify(
          'info',
          `${l.waiting} agent(s) waiting behind your ${lockText([l])} (the first for ${Math.round(l.oldestWaitMs / 1000)} s): finish, commit and release it when you can`,
          key,
        );
      else {
        state.dropNotice(key);
        tell('info', `nobody waits behind your ${lockText([l])} any more`);
      }
    }
  });
  client.on('lock.expiring', ({ locks }) => {
    if (state.active) {
      renew(client, locks).catch((err: unknown) => notify('warning', `could not renew: ${toClientError(err).message}`));
      return;
    }
    notify('warning', `lease ending soon, not renewed since you have been idle: ${lockText(locks)}`);
  });
  // A lock lost is never taken again behind the agent's back; it must lock and read again. One
  // lost with the session is told with the session (sessionLost).
  client.on('lost', (lock) => {
    if (lock.reason === 'session-lost') return;
    notify(
      'warning',
      `lock lost (${LOSS_TEXT[lock.reason]}): ${lockText([lock])}; what you read under it may be stale: lock it and read it again before editing`,
    );
  });
  let inDoubt = false;
  client.on('suspended', ({ locks }) => {
    if (locks.length === 0) return;
    inDoubt = true;
    notify(
      'warning',
      `connection to the server lost; until the session resumes these are in doubt: ${lockText(locks)}`,
    );
  });
  client.on('function.changed', (c) => {
    if (c.by.sessionId === client.sessionId) return;
    const what = label({ program: c.program, function: c.function }, namesOf(c.program));
    notify(
      'info',
      c.removed === true
        ? `${what}, which you read, was removed by ${c.by.name}`
        : `${what}, which you read, changed: now version ${c.version} (by ${c.by.name}); read it again before editing`,
    );
  });
  client.on('sessionLost', ({ locks }) => {
    inDoubt = false;
    notify('warning', `the connection dropped and the session was lost with its locks: ${lockText(locks) || 'none'}`);
  });
  client.on('disconnected', () => o.log('connection to the server lost; reconnecting'));
  client.on('connected', ({ hello, reconnect, resumed }) => {
    o.log(
      reconnect
        ? `reconnected to ${client.url}`
        : `connected to ${client.url} as ${hello.name} (session ${hello.sessionId})`,
    );
    if (!resumed || !inDoubt) return;
    inDoubt = false;
    notify('info', `session resumed; still held: ${lockText(client.held()) || 'none'}`);
  });

  for (const t of TOOLS) {
    server.registerTool(t.name, { description: t.description, inputSchema: t.input }, async (args, extra) => {
      state.touch();
      const progressToken = extra._meta?.progressToken;
      let step = 0;
      const ctx: ToolContext = {
        client,
        state,
        names: namesOf,
        signal: extra.signal,
        repo: o.repo,
        pathProgram: o.pathProgram,
        progressEveryMs: o.progressEveryMs,
        progress: async (message) => {
          if (progressToken === undefined) return;
          step += 1;
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress: step, message },
          });
        },
      };
      try {
        await link.ready(extra.signal);
        const out = await t.run(args as never, ctx);
        return result(state.drain(), out.text, out.data, false);
      } catch (err) {
        const e = toClientError(link.failure(err));
        const error = {
          type: e.type,
          message: e.message,
          retryable: e.retryable,
          retryAfterMs: e.retryAfterMs,
          data: e.data,
        };
        return result(state.drain(), errorText(e, namesOf(programOf(args)), t.name), { error }, true);
      }
    });
  }
  return server;
}

const LOSS_TEXT: Record<Exclude<LossReason, 'session-lost'>, string> = {
  expired: 'its lease ran out',
  'fence-moved': 'another agent was granted it meanwhile',
  'resource-gone': 'it no longer exists',
  'not-restored': 'the server did not give it back after a reconnect',
};

function programOf(args: unknown): string {
  return (args as { program?: string }).program ?? DEFAULT_PROGRAM;
}

/** Renews these locks, one call per program; a lock released meanwhile is no failure. */
async function renew(client: LockstepClient, locks: readonly Grant[]): Promise<void> {
  for (const program of new Set(locks.map((l) => l.resource.program))) {
    const mine = locks.filter((l) => l.resource.program === program && client.heldGrant(l.resource) !== undefined);
    if (mine.length === 0) continue;
    try {
      await client.lock.renew(
        selector(
          program,
          mine.map((l) => l.resource),
        ),
      );
    } catch (err) {
      if (!isLockstepError(err, 'NOT_HELD')) throw err;
    }
  }
}

/** Notices of what happened since the last call come first, in the text and the structured content. */
function result(notices: string[], text: string, data: Record<string, unknown>, isError: boolean): CallToolResult {
  const head = notices.length === 0 ? '' : `Since your last call:\n${notices.map((n) => `- ${n}`).join('\n')}\n\n`;
  return {
    content: [{ type: 'text', text: head + text }],
    structuredContent: notices.length === 0 ? data : { notices, ...data },
    ...(isError ? { isError: true } : {}),
  };
}
