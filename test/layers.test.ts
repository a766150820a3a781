import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The layering rule of docs/architecture.md, for every layer: what each may import of ours (as a
// path under src/, a folder or one file) and which packages are out of bounds.

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const SOCKETS = /^(node:)?(ws|http|https|http2|net|tls|dgram)$/;

const LAYERS: Array<{ layer: string; ours: string[]; forbiddenPackages: RegExp | null }> = [
  // The wire format: nothing of ours, and of packages only zod.
  { layer: 'protocol', ours: ['protocol'], forbiddenPackages: /^(?!zod$)/ },
  // The cores: neither imports the other, nor any socket.
  // The lock core is pure: of packages only an event emitter, ids and hashing.
  {
    layer: 'concurrency',
    ours: ['protocol', 'concurrency'],
    forbiddenPackages: /^(?!(eventemitter3|uuid|node:crypto)$)/,
  },
  { layer: 'service', ours: ['protocol', 'service'], forbiddenPackages: SOCKETS },
  // The cluster: leadership (the lease in the database, and the life of a leader state, built
  // through callbacks of the server) and failover (the lock journal and its restore: the lock
  // core's events and the store's database). Below the application; never sockets.
  { layer: 'cluster', ours: ['protocol', 'concurrency', 'service', 'cluster'], forbiddenPackages: SOCKETS },
  // The application: knows sessions and sinks, never sockets.
  {
    layer: 'coordinator',
    ours: ['protocol', 'concurrency', 'service', 'cluster', 'coordinator'],
    forbiddenPackages: SOCKETS,
  },
  // Sockets and frames: of the coordinator only its public entry.
  { layer: 'transport', ours: ['protocol', 'coordinator/index.ts', 'transport'], forbiddenPackages: null },
  // Beside the server, built on the protocol only.
  { layer: 'client', ours: ['protocol', 'client'], forbiddenPackages: null },
  { layer: 'dashboard', ours: ['dashboard'], forbiddenPackages: /./ },
];

/** Every import of a file: static, side-effect-only and dynamic, and re-exports. */
function specifiers(source: string): string[] {
  return [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]!);
}

function sourceFiles(layer: string): string[] {
  return (readdirSync(join(SRC, layer), { recursive: true }) as string[]).filter((f) => /\.(ts|js)$/.test(f));
}

/**
 * The import cycles among src/'s files, type-only imports included (a type cycle today is a load
 * cycle after the next edit), each as the files around it. A depth-first walk: an import of a file
 * still on the walk's path closes a cycle.
 */
function importCycles(): string[][] {
  const imports = new Map<string, string[]>();
  for (const file of sourceFiles('.')) {
    const ours = specifiers(readFileSync(join(SRC, file), 'utf8')).filter((spec) => spec.startsWith('.'));
    imports.set(
      file,
      ours.map((spec) => normalize(join(dirname(file), spec))),
    );
  }
  const cycles: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const walk = (file: string) => {
    path.push(file);
    for (const next of imports.get(file) ?? []) {
      const at = path.indexOf(next);
      if (at >= 0) cycles.push([...path.slice(at), next]);
      else if (!done.has(next)) walk(next);
    }
    path.pop();
    done.add(file);
  };
  for (const file of imports.keys()) if (!done.has(file)) walk(file);
  return cycles;
}

describe('layers', () => {
  for (const { layer, ours, forbiddenPackages } of LAYERS) {
    it(`src/${layer} imports only ${ours.join(', ')} of ours`, () => {
      const files = sourceFiles(layer);
      expect(files.length).toBeGreaterThan(0);
      const wrong: string[] = [];
      for (const file of files) {
        const text = readFileSync(join(SRC, layer, file), 'utf8');
        expect(text, `${layer}/${file} uses require()`).not.toMatch(/\brequire\(/);
        for (const spec of specifiers(text)) {
          if (spec.startsWith('.')) {
            const target = normalize(join(layer, dirname(file), spec));
            if (!ours.some((o) => target === o || target.startsWith(`${o}/`)))
              wrong.push(`${layer}/${file} -> ${target}`);
          } else if (forbiddenPackages?.test(spec)) {
            wrong.push(`${layer}/${file} -> package ${spec}`);
          }
        }
      }
      expect(wrong).toEqual([]);
    });
  }

  it('no file in src/ is imported in a cycle (type-only imports too)', () => {
    expect(importCycles().map((cycle) => cycle.join(' -> '))).toEqual([]);
  });
});
