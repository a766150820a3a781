import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { functionHash, ProgramService } from '../../src/service/index.ts';
import { systemClock } from '../../src/concurrency/index.ts';
import { freshLocation } from '../helpers/service.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-durability-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  acks: Array<{ revision: number; hash: string }>;
  fences: number[];
  signal: NodeJS.Signals | null;
}

/** Runs the writer and SIGKILLs it as soon as it has acknowledged `killAfter` edits. */
function runWriter(path: string, killAfter: number): Promise<Outcome> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/service-writer.ts', path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const outcome: Outcome = { acks: [], fences: [], signal: null };
  createInterface({ input: child.stdout }).on('line', (line) => {
    const [kind, a, b] = line.split(' ');
    if (kind === 'ack') {
      outcome.acks.push({ revision: Number(a), hash: String(b) });
      if (outcome.acks.length === killAfter) child.kill('SIGKILL');
    } else if (kind === 'fence') {
      outcome.fences.push(Number(a));
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // 'close' waits for stdout to drain: every line the writer managed to print is counted.
    child.on('close', (_code, signal) => resolve({ ...outcome, signal }));
  });
}

describe('durability', () => {
  it('keeps every acknowledged edit, whole, across a SIGKILL', async () => {
    const path = await freshLocation(dir, 'killed.db');
    const { acks, fences, signal } = await runWriter(path, 50);
    expect(signal).toBe('SIGKILL');
    expect(acks.length).toBeGreaterThanOrEqual(50);
    expect(fences.length).toBeGreaterThan(0);

    const svc = await ProgramService.open({ path, clock: systemClock });
    try {
      const program = svc.getProgram('main');
      const lastAck = acks.at(-1)?.revision as number;
      // Every acknowledged revision is there; at most the one in flight at the kill is extra.
      expect(program.revision).toBeGreaterThanOrEqual(lastAck);
      expect(program.revision).toBeLessThanOrEqual(lastAck + 1);
      expect(acks.map((a) => a.revision)).toEqual(acks.map((_, i) => i + 1));
      expect((await svc.history('main', { limit: 1000 })).map((r) => r.revision)).toEqual(
        Array.from({ length: program.revision }, (_, i) => i + 1),
      );

      const { function: fn, hash, version } = svc.getFunction('main', 1);
      expect(functionHash(fn)).toBe(hash);
      expect(version).toBe(program.revision);
      // No partial edit: revision r holds r - 1 complete node pairs, each with its edge, and the count r.
      const pairs = program.revision - 1;
      expect(fn.nodes).toHaveLength(1 + 2 * pairs);
      expect(fn.edges).toHaveLength(pairs);
      expect(fn.nodes[0]?.attrs).toEqual({ count: program.revision });
      for (const edge of fn.edges) {
        expect(edge.from.node).toBe(2 * edge.id);
        expect(edge.to.node).toBe(2 * edge.id + 1);
      }
      // Each acknowledged hash is a stored version, and its body is the state of that revision.
      for (const ack of acks) {
        const [conflict] = await svc.checkExpected('main', { '1': ack.hash });
        if (ack.revision === program.revision) {
          expect(conflict).toBeUndefined();
        } else {
          expect(conflict?.diff?.nodes.added).toHaveLength(2 * (program.revision - ack.revision));
        }
      }

      const next = svc.fences().next('main');
      expect(next).toBeGreaterThan(Math.max(...fences));
    } finally {
      await svc.close();
    }
  });
});
