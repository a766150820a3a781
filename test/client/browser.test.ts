import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** Every module the file pulls in (type-only imports aside), following relative imports. */
function runtimeImports(entry: string, seen = new Map<string, string[]>()): Map<string, string[]> {
  if (seen.has(entry)) return seen;
  const source = readFileSync(entry, 'utf8');
  const specifiers = [...source.matchAll(/^(?:import|export)\s+(?!type\b)[^'"]*?from\s+'([^']+)'/gm)].map(
    (m) => m[1] as string,
  );
  seen.set(entry, specifiers);
  for (const s of specifiers) if (s.startsWith('.')) runtimeImports(resolve(dirname(entry), s), seen);
  return seen;
}

describe('the browser entry of the client', () => {
  it('imports nothing from Node or the ws package', () => {
    const entry = fileURLToPath(new URL('../../src/client/browser.ts', import.meta.url));
    const external = [...runtimeImports(entry).values()].flat().filter((s) => !s.startsWith('.'));
    expect(new Set(external)).toEqual(new Set(['eventemitter3', 'uuid', 'zod']));
  });
});
