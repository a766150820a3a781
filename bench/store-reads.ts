// What the reads that need the program store cost once a program has 10,000 revisions, on SQLite
// and (when Debian's postgresql-15 is installed) PostgreSQL, in one run.
// Run: node --import tsx bench/store-reads.ts   (about a minute: most of it builds the history)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/concurrency/index.ts';
import { ProgramService } from '../src/service/index.ts';
import { freshDatabase, postgresInstalled, startPostgres } from '../test/helpers/postgres.ts';

const REVISIONS = 10_000;
const FUNCTIONS = 20;
const REPEAT = 20;
const meta = { sessionId: '7c0e2d4a-1b3f-4e5d-8a9b-0c1d2e3f4a5b', name: 'bench' };

/** Builds the history; returns a hash function 2 had long ago (a stale expected hash). */
async function build(path: string): Promise<string> {
  const svc = await ProgramService.open({ path, clock: systemClock });
  const ops = Array.from({ length: FUNCTIONS }, (_, i) => [
    { op: 'addFunction' as const, name: `f${i}` },
    { op: 'addNode' as const, function: `f${i}`, node: { id: 0, op: 'count', attrs: { n: 0 } } },
  ]).flat();
  const first = await svc.applyEdit('main', ops, meta);
  await svc.createCheckpoint('main', 'start', meta);
  for (let r = 2; r <= REVISIONS; r++) {
    const fn = 1 + (r % FUNCTIONS);
    await svc.applyEdit('main', [{ op: 'updateNode', function: fn, node: { id: 0, attrs: { n: r } } }], meta);
  }
  await svc.close();
  return first.functions[1]?.hash as string;
}

async function time(label: string, work: () => Promise<unknown>): Promise<string> {
  await work();
  const started = performance.now();
  for (let i = 0; i < REPEAT; i++) await work();
  return `${label} ${((performance.now() - started) / REPEAT).toFixed(2)} ms`;
}

async function measure(store: string, path: string): Promise<void> {
  const oldHash = await build(path);
  const opened = performance.now();
  const svc = await ProgramService.open({ path, clock: systemClock });
  const lines = [`start-up (load) ${(performance.now() - opened).toFixed(1)} ms`];
  lines.push(await time('history.list (last 100)', () => svc.history('main', { after: REVISIONS - 100, limit: 100 })));
  lines.push(await time('history.list (first 100)', () => svc.history('main', { limit: 100 })));
  lines.push(await time('undo ops of revision 5,000', () => svc.undoOps('main', 5_000)));
  lines.push(await time('history.diff 5,000 -> 10,000', () => svc.diffRevisions('main', 5_000, REVISIONS)));
  lines.push(await time('history.diff 9,999 -> 10,000', () => svc.diffRevisions('main', REVISIONS - 1, REVISIONS)));
  lines.push(await time('function diff v1 -> v500', () => svc.diffFunction('main', 1, 1, 500)));
  lines.push(await time('restore ops to revision 1', () => svc.restoreOps('main', 'start')));
  lines.push(await time('conflict diff (stale hash)', () => svc.checkExpected('main', { '2': oldHash })));
  await svc.close();
  console.log(`${store}, ${REVISIONS} revisions over ${FUNCTIONS} functions:\n  ${lines.join('\n  ')}`);
}

const dir = mkdtempSync(join(tmpdir(), 'lockstep-bench-reads-'));
try {
  await measure('SQLite file', join(dir, 'reads.db'));
  if (postgresInstalled()) {
    const cluster = await startPostgres();
    try {
      await measure('PostgreSQL 15 (local)', await freshDatabase(cluster.url));
    } finally {
      await cluster.stop();
    }
  } else {
    console.log('PostgreSQL: skipped, postgresql-15 is not installed');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
