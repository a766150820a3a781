import { z } from 'zod';

// Path resources (docs/protocol.md, "Paths"): the rules a path must keep, the order paths sort
// in and the hierarchy a lock on a path covers. Pure: the lock core and the store build on these.

export const PATH_MAX_BYTES = 1024;

const encoder = new TextEncoder();

/**
 * The rule `path` breaks, as the -32602 message states it, or undefined for a valid path. A lone
 * surrogate has no UTF-8 encoding; NUL would cut the path short in C and in PostgreSQL text.
 */
export function pathProblem(path: string): string | undefined {
  if (path.length === 0) return 'a path is 1 to 1024 bytes of UTF-8, not empty';
  if (path.includes('\u0000')) return 'a path must not contain NUL (U+0000)';
  if (/\p{Cs}/u.test(path)) return 'a path must be valid UTF-8 (no lone surrogate)';
  if (encoder.encode(path).length > PATH_MAX_BYTES) return 'a path is at most 1024 bytes of UTF-8';
  if (path.startsWith('/')) return 'a path must not start with "/"';
  if (path.endsWith('/')) return 'a path must not end with "/"';
  for (const segment of path.split('/')) {
    if (segment === '') return 'a path must not have an empty segment ("//")';
    if (segment === '.' || segment === '..') return 'a path must not have a "." or ".." segment';
  }
  return undefined;
}

// The same rules as a JSON Schema pattern, bar the byte length (maxLength counts characters):
// segments of anything but "/", NUL and lone surrogates, none of them "." or "..".
const SEGMENT_CHAR = '(?:[^/\\u0000\\uD800-\\uDFFF]|[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])';
const SEGMENT = `(?!\\.\\.?(?:/|$))${SEGMENT_CHAR}+`;
export const PATH_PATTERN = `^${SEGMENT}(?:/${SEGMENT})*$`;

export const LockPath = z
  .string()
  .superRefine((path, ctx) => {
    const problem = pathProblem(path);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta({ pattern: PATH_PATTERN, minLength: 1, maxLength: PATH_MAX_BYTES })
  .describe(
    'A path: 1-1024 bytes of UTF-8, "/"-separated segments, none empty, "." or "..", no leading or trailing "/", no NUL; case-sensitive',
  );

/** The paths a lock on `path` sits below, nearest first: `a/b/c` has `a/b` and `a`. */
export function pathAncestors(path: string): string[] {
  const out: string[] = [];
  for (let at = path.lastIndexOf('/'); at > 0; at = path.lastIndexOf('/', at - 1)) out.push(path.slice(0, at));
  return out;
}

/**
 * Segment by segment, each by the bytes of its UTF-8 (code point order; UTF-16 order differs
 * above U+D7FF): a path comes right before the paths below it, as a tree in pre-order.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A segment that ended first sorts first.
    if (x === 0x2f || y === 0x2f) return x === 0x2f ? -1 : 1;
    const surrogate = (x >= 0xd800 && x <= 0xdfff) || (y >= 0xd800 && y <= 0xdfff);
    return surrogate ? a.codePointAt(i)! - b.codePointAt(i)! : x - y;
  }
  return a.length - b.length;
}
