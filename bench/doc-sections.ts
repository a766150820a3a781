// docs/benchmarks.md is written by more than one bench: `npm run bench` writes the file, and a
// section another bench generates (`npm run bench:cluster`'s) lies between
// `<!-- NAME:start -->` and `<!-- NAME:end -->`. Each writer replaces only its own part and keeps
// the others as they are, so running one bench never drops another's figures.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BENCHMARKS_DOC = new URL('../docs/benchmarks.md', import.meta.url);

/**
 * Where a marked section goes when the file has none yet: before this heading (report.ts keeps
 * them there too), else at the end.
 */
const PLACE_BEFORE = '## Hot path profile';

const start = (name: string) => `<!-- ${name}:start -->`;
const end = (name: string) => `<!-- ${name}:end -->`;
const MARKED = /<!-- ([\w-]+):start -->[\s\S]*?<!-- \1:end -->/g;

/** Every marked section of the current file, markers included, in order. */
export function markedSections(): string[] {
  if (!existsSync(BENCHMARKS_DOC)) return [];
  return readFileSync(BENCHMARKS_DOC, 'utf8').match(MARKED) ?? [];
}

/** Puts `lines` into the file as section `name`, in place of its previous run's, leaving the rest. */
export function writeMarkedSection(name: string, lines: string[]): void {
  const section = [start(name), ...lines, end(name)].join('\n');
  const doc = existsSync(BENCHMARKS_DOC) ? readFileSync(BENCHMARKS_DOC, 'utf8') : '';
  const from = doc.indexOf(start(name));
  const to = doc.indexOf(end(name));
  let out: string;
  if (from >= 0 && to > from) out = doc.slice(0, from) + section + doc.slice(to + end(name).length);
  else {
    const at = doc.indexOf(`\n${PLACE_BEFORE}\n`);
    out = at < 0 ? `${doc.trimEnd()}\n\n${section}\n` : `${doc.slice(0, at)}\n${section}\n${doc.slice(at)}`;
  }
  writeBenchmarksDoc(out);
}

/** Writes the file as the formatter the lint step checks docs with would leave it (aligned tables). */
export function writeBenchmarksDoc(text: string): void {
  writeFileSync(BENCHMARKS_DOC, `${text.trimEnd()}\n`);
  const biome = fileURLToPath(new URL('../node_modules/.bin/biome', import.meta.url));
  spawnSync(biome, ['format', '--write', fileURLToPath(BENCHMARKS_DOC)], { stdio: 'ignore' });
}
