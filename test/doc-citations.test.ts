import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

// Code comments cite the project's own docs, and only what is there: a rule docs/cluster.md
// numbers, a file of this repository. The specification the docs were written from is not in the
// repository, so a comment that cites it (a bare "cluster.md", "spec section 2") or any path
// outside the repository points nowhere for a reader of the code.

const ROOT = join(import.meta.dirname, '..');
const SCANNED = ['src', 'test', 'bench', 'examples'];
const CODE = /\.(ts|mts|js|mjs|py)$/;

/** A path of the repository's own tree as docs and comments write it: `src/x/y.ts`, `docs/z.md`. */
const REPO_PATH =
  /(?<![\w./-])((?:src|test|bench|docs|examples|scripts)\/[\w./*-]*\.(?:ts|js|mjs|md|json|yml|conf|py|sh|css|html|svg))\b/g;

/** Paths of an agent's repository in the docs' examples of path locks (and this file's own), not of ours. */
const EXAMPLE_PATHS = new Set(['src/a.ts', 'src/b.ts', 'src/app/main.ts', 'docs/intro.md', 'src/x/y.ts', 'docs/z.md']);

function files(dir: string, pattern = CODE): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : files(path, pattern);
    return pattern.test(e.name) ? [path] : [];
  });
}

/** The comments of a source file, line by line: `//` and `#` comments and block comment lines. */
function comments(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let inBlock = false;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (inBlock || line.startsWith('/*')) {
      out.push({ line: i + 1, text: line });
      inBlock = !line.includes('*/');
      return;
    }
    const at = line.search(/(^|\s)(\/\/|# )/);
    if (at >= 0) out.push({ line: i + 1, text: line.slice(at) });
  });
  return out;
}

/** The numbers of docs/cluster.md's headings "### Rule N: ..." and "### Failover rule N: ...". */
function numbered(doc: string, kind: 'Rule' | 'Failover rule'): Set<number> {
  return new Set([...doc.matchAll(new RegExp(`^### ${kind} (\\d+):`, 'gm'))].map((m) => Number(m[1])));
}

/** What is wrong with one comment's citations. */
function problems(text: string, rules: Set<number>, failoverRules: Set<number>): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/\b(failover )?rules? (\d+)(?: (?:to|and) (\d+))?/gi)) {
    const known = m[1] === undefined ? rules : failoverRules;
    for (const n of [m[2], m[3]].filter((x) => x !== undefined).map(Number)) {
      if (!known.has(n)) found.push(`${m[1] ?? ''}rule ${n} is not in docs/cluster.md`);
    }
  }
  for (const m of text.matchAll(/(?<![\w./-])((?:\.{1,2}\/)*[\w./-]*\.md)\b/g)) {
    const path = m[1] as string;
    if (!existsSync(join(ROOT, path))) found.push(`${path} is not a file of this repository (from its root)`);
  }
  if (/shared\/spec|\/work\/|(\.\.\/){2,}/.test(text)) found.push('a path outside the repository');
  if (/\bspec\b|\bspec's\b/i.test(text)) found.push('cites the specification: cite docs/ instead');
  return found;
}

describe('code comments cite the docs', () => {
  const cluster = readFileSync(join(ROOT, 'docs/cluster.md'), 'utf8');
  const rules = numbered(cluster, 'Rule');
  const failoverRules = numbered(cluster, 'Failover rule');

  it('docs/cluster.md numbers rules 1 to 7 and its failover rules from 1', () => {
    expect([...rules]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect([...failoverRules]).toEqual(Array.from({ length: failoverRules.size }, (_, i) => i + 1));
    expect(failoverRules.size).toBeGreaterThan(0);
  });

  it('cite only rules docs/cluster.md has and files of the repository', () => {
    // This file quotes what it refuses.
    const scanned = SCANNED.flatMap((dir) => files(join(ROOT, dir))).filter((f) => f !== import.meta.filename);
    const wrong = scanned.flatMap((file) =>
      comments(readFileSync(file, 'utf8')).flatMap(({ line, text }) =>
        problems(text, rules, failoverRules).map((p) => `${relative(ROOT, file)}:${line}: ${p}: ${text}`),
      ),
    );
    expect(wrong).toEqual([]);
  });

  it('catch what they are meant to', () => {
    const check = (text: string) => problems(text, rules, failoverRules);
    expect(check('// (docs/cluster.md, rule 7) and failover rule 3')).toEqual([]);
    expect(check('// cluster rule 9')).toEqual(['rule 9 is not in docs/cluster.md']);
    expect(check('// failover rule 99')).toEqual(['failover rule 99 is not in docs/cluster.md']);
    expect(check('// as cluster.md section 3 says')).toEqual([
      'cluster.md is not a file of this repository (from its root)',
    ]);
    expect(check('// see ../shared/spec/cluster.md')).toContain('a path outside the repository');
    expect(check('// (spec section 2)')).toEqual(['cites the specification: cite docs/ instead']);
    expect(check('// docs/protocol.md, "Content hashes"; README.md')).toEqual([]);
  });

  it('name only files the repository has, in the docs as in the comments', () => {
    const docs = [
      'README.md',
      'CONTRIBUTING.md',
      'CHANGELOG.md',
      'bench/README.md',
      ...files(join(ROOT, 'docs'), /\.md$/).map((f) => relative(ROOT, f)),
    ];
    const sources = SCANNED.flatMap((dir) => files(join(ROOT, dir)));
    const texts = [
      ...docs.map((f) => ({ file: f, text: readFileSync(join(ROOT, f), 'utf8') })),
      ...sources.map((f) => ({
        file: relative(ROOT, f),
        text: comments(readFileSync(f, 'utf8'))
          .map((c) => c.text)
          .join('\n'),
      })),
    ];
    const missing = texts.flatMap(({ file, text }) =>
      [...text.matchAll(REPO_PATH)]
        .map((m) => m[1] as string)
        .filter((path) => !path.includes('*') && !EXAMPLE_PATHS.has(path) && !existsSync(join(ROOT, path)))
        .map((path) => `${file}: ${path}`),
    );
    // The changelog tells of files that were; it is read for its history, not as a map.
    expect(missing.filter((m) => !m.startsWith('CHANGELOG.md'))).toEqual([]);
  });

  it('link docs/cluster.md and docs/cluster-failover.md to headings that exist', () => {
    const slug = (heading: string) =>
      heading
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-');
    const anchors = (doc: string) => new Set([...doc.matchAll(/^#+ (.+)$/gm)].map((m) => slug(m[1] as string)));
    const docs = {
      'cluster.md': cluster,
      'cluster-failover.md': readFileSync(join(ROOT, 'docs/cluster-failover.md'), 'utf8'),
    };
    const broken: string[] = [];
    for (const [name, text] of Object.entries(docs)) {
      for (const m of text.matchAll(/\]\(((?:cluster|cluster-failover)\.md)?#([^)]+)\)/g)) {
        const target = (m[1] ?? name) as keyof typeof docs;
        if (!anchors(docs[target]).has(m[2] as string)) broken.push(`${name}: ${m[0]}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
