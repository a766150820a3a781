import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// docs/architecture.md's "Who owns which rule" table points at files: each must exist, or the
// table sends a reader to a file that was moved or removed.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const doc = readFileSync(`${ROOT}docs/architecture.md`, 'utf8');

describe('docs/architecture.md', () => {
  it('names only paths that exist in its rule table', () => {
    const table = doc.slice(doc.indexOf('## Who owns which rule'), doc.indexOf('## One request, traced'));
    const paths = [...table.matchAll(/`((?:src|test|docs|bench)\/[^`*\s]+)`/g)].map((m) => m[1] as string);
    expect(paths.length).toBeGreaterThan(20);
    expect(paths.filter((p) => !existsSync(`${ROOT}${p}`))).toEqual([]);
  });
});
