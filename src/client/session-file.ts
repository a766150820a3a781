import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LockstepClient } from './client.ts';

// Where `lockstep guard` (a git pre-commit hook) finds the session of the agent that commits
// (docs/mcp.md, "Which session commits"). Several agents may share one working tree, so one file
// per repository could not say which of them commits: each session's process (the MCP bridge, or
// an SDK program) writes its own file, named by its pid, listing itself and its nearest ancestors
// in its process group (bridge -> npx -> the coding agent). The hook walks up its own ancestors (hook -> git -> the
// agent's shell -> the agent) to the first one that a file lists: the agent both descend from.
// The file holds the session id, which no other session shares (a name may be).

/** At most this many processes are listed: the writer, and enough to reach the agent through a launcher (npx, sh). */
const MAX_LISTED = 4;

/** What one session file says. */
export interface SessionRecord {
  sessionId: string;
  name: string;
  /** The nodes the session talks to: where the guard asks, unless told otherwise. */
  urls: string[];
  /** The process that holds the session (the file's name). */
  pid: number;
  /** It and its nearest ancestors, nearest first: a commit run by one of them is this session's. */
  ancestors: number[];
  at: string;
}

/** `<git common dir>/lockstep/sessions` of the repository that holds `cwd`; undefined outside one. */
export function sessionDir(cwd: string): string | undefined {
  try {
    // The common dir, not the worktree's own: an agent may commit in another worktree of the same repository.
    const dir = execFileSync('git', ['rev-parse', '--git-common-dir'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return join(resolve(cwd, dir), 'lockstep', 'sessions');
  } catch {
    return undefined;
  }
}

function fileOf(dir: string, pid: number): string {
  return join(dir, `${pid}.json`);
}

/** The record of agent process `pid` in `dir`, if it has one. */
export function readSessionRecord(dir: string, pid: number): SessionRecord | undefined {
  try {
    return JSON.parse(readFileSync(fileOf(dir, pid), 'utf8')) as SessionRecord;
  } catch {
    return undefined;
  }
}

/** Written whole, then renamed into place: the hook never reads half a file. */
function writeRecord(dir: string, record: SessionRecord): void {
  mkdirSync(dir, { recursive: true });
  const file = fileOf(dir, record.pid);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(tmp, file);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Files of agent processes that are gone (killed before they could remove their own). */
function sweep(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const pid = /^(\d+)\.json$/.exec(n)?.[1];
    if (pid !== undefined && !alive(Number(pid))) rmSync(join(dir, n), { force: true });
  }
}

export interface PublishOptions {
  /** A directory in the git repository the agent commits to (default: the current directory). */
  cwd?: string;
}

/** A published session: `file` while it is written; stop() removes it. */
export interface PublishedSession {
  readonly file: string | undefined;
  stop(): void;
}

/**
 * Keeps the client's session id where `lockstep guard` finds it, for commits run by this process or
 * its nearest ancestors: written at each `connected` (a session lost and replaced gets the new id),
 * removed when the client closes or stop() is called. Outside a git repository nothing is written
 * (`file` stays undefined). One client per process: the guard refuses a commit it cannot tell apart.
 */
export function publishSession(client: LockstepClient, o: PublishOptions = {}): PublishedSession {
  const dir = sessionDir(o.cwd ?? process.cwd());
  const pid = process.pid;
  const ancestors = listed(pid);
  let file: string | undefined;
  const write = () => {
    const hello = client.hello;
    if (dir === undefined || hello === undefined) return;
    sweep(dir);
    writeRecord(dir, {
      sessionId: hello.sessionId,
      name: hello.name,
      urls: [...client.urls],
      pid,
      ancestors,
      at: new Date().toISOString(),
    });
    file = fileOf(dir, pid);
  };
  const stop = () => {
    client.off('connected', write);
    client.off('closed', stop);
    // Only our own record: another session may have taken the file over for the same agent since.
    if (file !== undefined && dir !== undefined && readSessionRecord(dir, pid)?.sessionId === client.sessionId)
      rmSync(file, { force: true });
    file = undefined;
  };
  client.on('connected', write);
  client.on('closed', stop);
  write();
  return {
    get file() {
      return file;
    },
    stop,
  };
}

/** The parent and process group of `pid`, from /proc (Linux) or `ps` (elsewhere); undefined when unknown. */
function procOf(pid: number): { ppid: number; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so read after the last ")".
    const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(ppid), pgrp: Number(pgrp) };
  } catch {
    try {
      const out = execFileSync('ps', ['-o', 'ppid=,pgid=', '-p', String(pid)], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const [ppid, pgrp] = out.trim().split(/\s+/).map(Number);
      return Number.isInteger(ppid) && Number.isInteger(pgrp)
        ? { ppid: ppid as number, pgrp: pgrp as number }
        : undefined;
    } catch {
      return undefined;
    }
  }
}

/** `pid`, its parent, and so on up to the root (pid 1, which every process shares, left out). */
function ancestry(pid: number): number[] {
  const out: number[] = [];
  for (let p: number | undefined = pid; p !== undefined && p > 1 && !out.includes(p); p = procOf(p)?.ppid) out.push(p);
  return out;
}

/**
 * The processes a session's file lists: `pid`, and its ancestors while they are in its process
 * group (the job its shell started: bridge, npx, the coding agent), its parent at least, at most
 * four in all. Not the shell or terminal above the agent, which other commits descend from too.
 */
function listed(pid: number): number[] {
  const group = procOf(pid)?.pgrp;
  const chain = ancestry(pid).slice(0, MAX_LISTED);
  const inGroup = chain.findIndex((p, i) => i > 1 && procOf(p)?.pgrp !== group);
  return inGroup < 0 ? chain : chain.slice(0, inGroup);
}

/** The session records in `dir` whose process is alive (a killed one's file is left behind). */
function liveRecords(dir: string): SessionRecord[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const pid = /^(\d+)\.json$/.exec(n)?.[1];
    const record = pid === undefined ? undefined : readSessionRecord(dir, Number(pid));
    return record !== undefined && Array.isArray(record.ancestors) && alive(record.pid) ? [record] : [];
  });
}

/**
 * The session of the process running `pid` (default: this one): of its ancestors (itself first),
 * the nearest that a record in `dir` lists, the agent both descend from. `ambiguous` when that one
 * is listed by several records (two sessions in one agent process): the guard cannot tell which commits.
 */
export function findSessionRecord(
  dir: string,
  pid: number = process.pid,
): { record: SessionRecord } | { ambiguous: SessionRecord[] } | undefined {
  const records = liveRecords(dir);
  for (const p of ancestry(pid)) {
    const found = records.filter((r) => r.ancestors.includes(p));
    if (found.length === 1) return { record: found[0] as SessionRecord };
    if (found.length > 1) return { ambiguous: found };
  }
  return undefined;
}
