// What an agent names to lock (a path, a directory as "src/", or a glob) turned into the path
// locks that cover it: a lock covers everything below its path, so a glob is covered by the
// directory of its literal leading segments. Globs are never matched against globs (docs/mcp.md,
// "Paths and globs").

import { pathAncestors } from '../protocol/path.ts';

const META = /[*?[\]\\]/;

/** "a/{b,c}/d" -> ["a/b/d", "a/c/d"]; nested braces too; an unmatched brace stays as it is. */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  let depth = 0;
  const commas: number[] = [];
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      const parts: string[] = [];
      let from = open + 1;
      for (const at of commas) {
        parts.push(pattern.slice(from, at));
        from = at + 1;
      }
      parts.push(pattern.slice(from, i));
      const head = pattern.slice(0, open);
      const tails = expandBraces(pattern.slice(i + 1));
      return parts.flatMap((p) => expandBraces(head + p).flatMap((h) => tails.map((t) => h + t)));
    } else if (c === ',' && depth === 1) commas.push(i);
  }
  return [pattern];
}

/**
 * The path a pattern (no braces) is covered by: its leading segments up to the first one with a
 * glob character (`*`, `?`, `[`, `]`, `\`). A leading "./" and a trailing "/" are dropped, so "src/"
 * is "src". Undefined when the first segment already is a pattern: it would cover the whole repository.
 */
export function coveringPath(pattern: string): string | undefined {
  const segments = pattern
    .replace(/^(\.\/)+/, '')
    .replace(/\/+$/, '')
    .split('/');
  const literal: string[] = [];
  for (const s of segments) {
    if (META.test(s)) break;
    literal.push(s);
  }
  return literal.length === 0 ? undefined : literal.join('/');
}

export interface Covering {
  /** The paths to lock: each named once, none below another. */
  paths: string[];
  /** Each pattern given that was not a plain path, and the paths it became. */
  widened: Array<{ pattern: string; paths: string[] }>;
  /** Patterns whose first segment is a glob ("**", "*.ts"): they would cover the whole repository, refused. */
  unbounded: string[];
}

/** The smallest set of paths (by the rule of coveringPath) whose locks cover every pattern. */
export function coveringPaths(patterns: readonly string[]): Covering {
  const all: string[] = [];
  const widened: Covering['widened'] = [];
  const unbounded: string[] = [];
  for (const pattern of patterns) {
    const found = expandBraces(pattern).map(coveringPath);
    if (found.some((p) => p === undefined)) {
      unbounded.push(pattern);
      continue;
    }
    const paths = [...new Set(found as string[])];
    all.push(...paths);
    if (paths.length > 1 || META.test(pattern)) widened.push({ pattern, paths });
  }
  const unique = new Set(all);
  // A path below another one named is covered by that one's lock (by whole segments).
  const paths = [...unique].filter((p) => !pathAncestors(p).some((a) => unique.has(a))).sort();
  return { paths, widened, unbounded };
}
