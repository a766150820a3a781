// Program service throughput: durable edits per second (SQLite and, when Debian's postgresql-15 is
// installed, PostgreSQL in the same run) and content hashes per second.
// Run: node --import tsx bench/service.ts   (bounded to about 40 s)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { functionHash, ProgramService } from '../src/service/index.ts';
import type { FunctionBody } from '../src/protocol/program.ts';
import { systemClock } from '../src/concurrency/index.ts';
import { freshDatabase, postgresInstalled, startPostgres } from '../test/helpers/postgres.ts';

const EDIT_SECONDS = 8;
const MEMORY_EDIT_SECONDS = 3;
const HASH_SECONDS = 4;
const meta = { sessionId: '5b2e8f0a-7c1d-4e3a-9f6b-1a2b3c4d5e6f', name: 'bench' };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** One small edit (a single updateNode) per transaction, for `seconds`. */
async function benchEdits(
  path: string,
  seconds: number,
): Promise<{ edits: number; perSecond: number; p50: number; p99: number }> {
  const svc = await ProgramService.open({ path, clock: systemClock });
  const id = (
    await svc.applyEdit(
      'main',
      [
        { op: 'addFunction', name: 'f' },
        { op: 'addNode', function: 'f', node: { id: 0, op: 'count' } },
      ],
      meta,
    )
  ).created[0]?.id as number;
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  for (let k = 0; performance.now() < end; k++) {
    const t = performance.now();
    await svc.applyEdit('main', [{ op: 'updateNode', function: id, node: { id: 0, attrs: { count: k } } }], meta);
    latencies.push(performance.now() - t);
  }
  const elapsed = (performance.now() - start) / 1000;
  await svc.close();
  latencies.sort((a, b) => a - b);
  return {
    edits: latencies.length,
    perSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

function hundredNodeFunction(): FunctionBody {
  return {
    id: 1,
    name: 'hundred',
    signature: { params: ['i64', 'i64'], returns: 'i64' },
    nodes: Array.from({ length: 100 }, (_, i) => ({
      id: i,
      op: i % 3 === 0 ? 'const' : 'add',
      attrs: { value: i, label: `n${i}` },
    })),
    edges: Array.from({ length: 99 }, (_, i) => ({
      id: i,
      from: { node: i, port: 0 },
      to: { node: i + 1, port: i % 2 },
    })),
  };
}

function benchHashes(seconds: number): { hashes: number; perSecond: number } {
  const fn = hundredNodeFunction();
  let hashes = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) functionHash(fn);
    hashes += 100;
  }
  return { hashes, perSecond: hashes / ((performance.now() - start) / 1000) };
}

const dir = mkdtempSync(join(tmpdir(), 'lockstep-bench-'));
try {
  const file = await benchEdits(join(dir, 'bench.db'), EDIT_SECONDS);
  console.log(
    `committed edits (file, WAL, synchronous=FULL, 1 op per transaction): ${file.perSecond.toFixed(0)}/s ` +
      `(${file.edits} edits, p50 ${file.p50.toFixed(3)} ms, p99 ${file.p99.toFixed(3)} ms)`,
  );
  if (postgresInstalled()) {
    // A throwaway local PostgreSQL 15 with fsync on and synchronous_commit=on, over TCP on 127.0.0.1.
    const cluster = await startPostgres({ durable: true });
    try {
      const pg = await benchEdits(await freshDatabase(cluster.url), EDIT_SECONDS);
      console.log(
        `committed edits (PostgreSQL 15, local TCP, fsync on, 1 op per transaction): ${pg.perSecond.toFixed(0)}/s ` +
          `(${pg.edits} edits, p50 ${pg.p50.toFixed(3)} ms, p99 ${pg.p99.toFixed(3)} ms)`,
      );
    } finally {
      await cluster.stop();
    }
  } else {
    console.log('committed edits (PostgreSQL): skipped, postgresql-15 is not installed');
  }
  const memory = await benchEdits(':memory:', MEMORY_EDIT_SECONDS);
  console.log(
    `committed edits (:memory:, no disk, for comparison): ${memory.perSecond.toFixed(0)}/s (p50 ${memory.p50.toFixed(3)} ms)`,
  );
  const hashes = benchHashes(HASH_SECONDS);
  console.log(
    `content hashes of a 100-node, 99-edge function: ${hashes.perSecond.toFixed(0)}/s (${hashes.hashes} hashes)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
