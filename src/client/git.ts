import { execFileSync } from 'node:child_process';

// What `lockstep guard` asks of git: the paths a commit changes and the content they are based on.

function git(cwd: string, args: string[]): string {
  // Pathspecs are taken literally: a file named "*.ts" is that file, not a glob.
  return execFileSync('git', ['--literal-pathspecs', ...args], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 256 * 1024 * 1024,
  });
}

function nulList(out: string): string[] {
  return out.split('\0').filter((s) => s !== '');
}

/** One path a staged commit changes, and the blob it is based on and the blob it will have. */
export interface StagedChange {
  /** Relative to the repository's top. */
  path: string;
  /** Its blob in HEAD; null for a path HEAD does not have (an added file, or a first commit). */
  base: string | null;
  /** Its blob in the index; null for a deleted path. */
  blob: string | null;
}

const ABSENT = /^0+$/;

/** One `git diff --raw -z` entry per path: the blob before and after (null where there is none). */
function rawDiff(cwd: string, args: string[]): StagedChange[] {
  // ":<mode> <mode> <blob> <blob> <status>" NUL "<path>" NUL, per path.
  const fields = nulList(git(cwd, ['diff', '--raw', '--no-renames', '--no-abbrev', '-z', ...args]));
  const out: StagedChange[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const [, , from, to] = (fields[i] as string).split(' ');
    out.push({
      path: fields[i + 1] as string,
      base: from === undefined || ABSENT.test(from) ? null : from,
      blob: to === undefined || ABSENT.test(to) ? null : to,
    });
  }
  return out;
}

/**
 * Every path the staged commit changes: added, modified and deleted files, and both sides of a
 * rename (renames are not detected, so one is a deletion and an addition). One `git diff --raw`
 * gives each path's blob on both sides. The commit of a merge (MERGE_HEAD) changes only the paths
 * whose staged content is neither side's: what comes in unchanged from the merged commits was
 * committed by their authors, under their locks.
 */
export function stagedChanges(cwd: string): StagedChange[] {
  const changes = rawDiff(cwd, ['--cached']);
  const merging = revision(cwd, 'MERGE_HEAD');
  if (merging === undefined) return changes;
  const theirs = new Set(rawDiff(cwd, ['--cached', merging]).map((c) => c.path));
  return changes.filter((c) => theirs.has(c.path));
}

/** The commit `name` (HEAD, MERGE_HEAD) is; undefined when there is none. */
function revision(cwd: string, name: string): string | undefined {
  try {
    return git(cwd, ['rev-parse', '--verify', '--quiet', `${name}^{commit}`]).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The commit HEAD names; undefined before the first commit or outside a repository. */
export function headCommit(cwd: string): string | undefined {
  return revision(cwd, 'HEAD');
}

/**
 * What to tell with the release of path write locks on `paths`: each file under them that the
 * commits from `since` (HEAD when they were granted; undefined: the first commit) to HEAD changed,
 * with its blob id in HEAD, or null for a file they deleted, and HEAD's commit. A deletion is
 * recorded too, so that the guard refuses a later change made on a copy that still had the file.
 */
export function changedContents(
  cwd: string,
  since: string | undefined,
  paths: readonly string[],
): Array<{ path: string; blob: string | null; commit: string }> {
  const head = headCommit(cwd);
  if (head === undefined || paths.length === 0 || since === head) return [];
  // Before the first commit, everything HEAD has is new: compared with the empty tree.
  const from = since ?? git(cwd, ['hash-object', '-t', 'tree', '--stdin']).trim();
  return rawDiff(cwd, [from, head, '--', ...paths]).map((c) => ({ path: c.path, blob: c.blob, commit: head }));
}

/** Files under `paths` with changes not committed (staged or not, or untracked). */
export function uncommitted(cwd: string, paths: readonly string[]): string[] {
  if (paths.length === 0) return [];
  // "XY <path>" NUL; a rename's entry is followed by its old path, as its own field.
  const fields = nulList(git(cwd, ['status', '--porcelain', '--no-renames', '-z', '--', ...paths]));
  return fields.map((f) => f.slice(3));
}

/** Where git runs hooks from for this repository (core.hooksPath, or the git dir's hooks). */
export function hooksDir(cwd: string): string {
  return git(cwd, ['rev-parse', '--path-format=absolute', '--git-path', 'hooks']).trim();
}
