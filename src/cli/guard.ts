import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findSessionRecord, type SessionRecord, sessionDir } from '../client/session-file.ts';
import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import {
  CommandFailed,
  CONNECTION_OPTIONS,
  connectClient,
  DEFAULT_URL,
  connectionHelp,
  connectionOf,
  docPath,
  rejectUnknownOptions,
  UsageError,
} from './common.ts';
import { hooksDir, stagedChanges } from '../client/git.ts';
import { verdict } from './guard-check.ts';

/** Set to "allow" to let commits through while no server answers (never the default: fail closed). */
const OFFLINE_ENV = 'LOCKSTEP_GUARD_OFFLINE';
/** Names the committing session outright, instead of the file its agent process wrote. */
const SESSION_ENV = 'LOCKSTEP_SESSION';
/** The first line of a hook this command installed: it may replace it, and no other. */
const HOOK_MARK = '# lockstep guard';

export const GUARD_HELP = `Usage: lockstep guard [options]

A git pre-commit hook: refuses a commit that changes a path (added, modified, deleted, both sides
of a rename) not covered by a write lock that the committing agent's session holds now, or whose
base in HEAD is not the content last released for it (a stale copy). It asks the server, never a
local copy. The session is the one the agent's MCP bridge (or SDK) wrote for the nearest ancestor
process of this hook under <git dir>/lockstep/sessions/, or ${SESSION_ENV}. See ${docPath('mcp.md')}.

When no server answers the commit is refused, unless ${OFFLINE_ENV}=allow.

Options:
${connectionHelp(18, `the URLs the agent's session was opened on, else ${DEFAULT_URL}`)}
  --program <name>   the program the repository's paths are locked in (env LOCKSTEP_PROGRAM,
                     default ${DEFAULT_PROGRAM})
  --install          write .git/hooks/pre-commit running this command with these options
  --force            with --install: replace a pre-commit hook that is not this one
  --help             show this text`;

export async function guard(argv: string[]): Promise<void> {
  const options = {
    ...CONNECTION_OPTIONS,
    program: { type: 'string' },
    install: { type: 'boolean' },
    force: { type: 'boolean' },
    help: { type: 'boolean' },
  } as const;
  rejectUnknownOptions('guard', argv, Object.keys(options));
  const { values } = parseArgs({ args: argv, options, strict: true });
  if (values.help === true) {
    console.log(GUARD_HELP);
    return;
  }
  const cwd = process.cwd();
  const program = values.program ?? process.env.LOCKSTEP_PROGRAM ?? DEFAULT_PROGRAM;
  if (values.install === true) {
    install(cwd, argv, values.force === true);
    return;
  }
  const changes = stagedChanges(cwd);
  if (changes.length === 0) return;
  const session = committingSession(cwd);
  // The guard's own flags or LOCKSTEP_URL first; else where the agent's session is.
  const given = (values.url?.length ?? 0) > 0 || process.env.LOCKSTEP_URL !== undefined;
  const connection = connectionOf(values);
  const urls = given || session.urls.length === 0 ? connection.urls : session.urls;
  let client: Awaited<ReturnType<typeof connectClient>>;
  try {
    client = await connectClient({ ...connection, urls, name: 'lockstep-guard', role: 'observer', reconnect: false });
  } catch (err) {
    if (process.env[OFFLINE_ENV] === 'allow') {
      console.error(`lockstep guard: no server answers (${(err as Error).message}); ${OFFLINE_ENV}=allow: not checked`);
      return;
    }
    throw new CommandFailed(
      `guard: commit refused: cannot ask the Lockstep server at ${urls.join(', ')} whether your session holds ` +
        `what it changes (${(err as Error).message}). Start the server, or set ${OFFLINE_ENV}=allow to commit unchecked.`,
    );
  }
  try {
    const { changes: answers } = await client.call('paths.check', {
      program,
      session: session.sessionId,
      changes: changes.map((c) => ({ path: c.path, base: c.base })),
    });
    const v = verdict(program, session, changes, answers);
    if (!v.ok) throw new CommandFailed(v.text);
  } finally {
    await client.close();
  }
}

/** LOCKSTEP_SESSION, else the file of the nearest ancestor agent process; refused when neither. */
function committingSession(cwd: string): SessionRecord {
  const id = process.env[SESSION_ENV];
  if (id !== undefined && id !== '')
    return { sessionId: id, name: `${SESSION_ENV}=${id}`, urls: [], pid: process.pid, ancestors: [], at: '' };
  const dir = sessionDir(cwd);
  const found = dir === undefined ? undefined : findSessionRecord(dir);
  if (found !== undefined && 'record' in found) return found.record;
  if (found !== undefined)
    throw new CommandFailed(
      `guard: commit refused: it is run by a process that several sessions list (${found.ambiguous.map((r) => `${r.name} ${r.sessionId}`).join(', ')}), ` +
        `so it cannot tell whose commit this is. Set ${SESSION_ENV} to the committing session's id.`,
    );
  throw new CommandFailed(
    `guard: commit refused: no Lockstep session for this commit (no ${SESSION_ENV}, and no ancestor process of ` +
      `this hook wrote its session under ${dir ?? '<git dir>/lockstep/sessions'}). Commit from an agent whose ` +
      `MCP bridge (lockstep mcp) or SDK client (publishSession) is running in this repository.`,
  );
}

/** The pre-commit hook: this node and this command, with the options given (--install dropped). */
function install(cwd: string, argv: readonly string[], force: boolean): void {
  const dir = hooksDir(cwd);
  const file = join(dir, 'pre-commit');
  if (existsSync(file) && !readFileSync(file, 'utf8').split('\n').includes(HOOK_MARK) && !force)
    throw new UsageError(`${file} exists and is not a lockstep guard hook: pass --force to replace it`);
  const args = argv.filter((a) => a !== '--install' && a !== '--force');
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const command = [process.execPath, process.argv[1] as string, 'guard', ...args].map(quote).join(' ');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    file,
    `#!/bin/sh\n${HOOK_MARK}\n# Installed by \`lockstep guard --install\` (docs/mcp.md).\nexec ${command}\n`,
  );
  chmodSync(file, 0o755);
  console.log(`installed ${file}`);
}
