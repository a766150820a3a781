import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { addFunctions, roundTrip, useServers } from '../helpers/server.ts';

// One session's flood (valid, invalid or refused frames, or costly calls within the rate) must not
// stall the others (docs/security.md: a bystander's round trip stays short). The figures are printed
// as a benchmark would; the assertion is a generous bound so that a loaded machine passes.

const ROUND_TRIPS = 150;
const GENEROUS_BOUND_MS = 1_500;
const DIFF_NODES = 3_000;

const call = (id: number, method: string, params: unknown) => JSON.stringify({ jsonrpc: '2.0', id, method, params });
const many = <T>(n: number, item: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => item(i));

describe('a flood from one socket', () => {
  const t = useServers();

  const floods: Array<[string, (diff: { from: number; to: number }) => string[]]> = [
    ['50,000 pings', () => many(50_000, (i) => call(i, 'session.ping', {}))],
    ['50,000 non-JSON frames', () => many(50_000, (i) => `not json ${i}`)],
    ['30,000 invalid-params calls', () => many(30_000, (i) => call(i, 'lock.acquire', { functions: 'x' }))],
    [`400 history.diff calls over a ${DIFF_NODES}-node function`, (d) => many(400, (i) => call(i, 'history.diff', d))],
  ];

  for (const [kind, frames] of floods) {
    it(`keeps a bystander's round trips short during ${kind}`, async () => {
      const s = await t.server();
      const bystander = await t.agent(s, 'bystander');
      const [f, big] = await addFunctions(bystander, ['f', 'big']);
      const diff = await bigFunction(bystander, big);

      const flood = new Worker(new URL('../helpers/flood-worker.mjs', import.meta.url), {
        workerData: { url: s.url, frames: frames(diff) },
      });
      try {
        await new Promise((resolve) => flood.once('message', resolve));
        const times: number[] = [];
        for (let i = 0; i < ROUND_TRIPS; i++) {
          const started = performance.now();
          await roundTrip(bystander, f);
          times.push(performance.now() - started);
        }
        flood.postMessage('report');
        const answered = await new Promise<number>((resolve) => flood.once('message', resolve));
        times.sort((a, b) => a - b);
        const worst = times.at(-1)!;
        const p99 = times[Math.floor(times.length * 0.99)]!;
        console.log(
          `${kind}: bystander round trip worst ${worst.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms ` +
            `(${ROUND_TRIPS} acquire+release); flood frames answered meanwhile: ${answered}`,
        );
        expect(worst).toBeLessThan(GENEROUS_BOUND_MS);
      } finally {
        await flood.terminate();
      }
    });
  }
});

/** Gives `big` DIFF_NODES nodes; returns the revisions a diff over that change spans. */
async function bigFunction(c: Awaited<ReturnType<ReturnType<typeof useServers>['agent']>>, big: number) {
  await c.call('lock.acquire', { functions: [big], mode: 'write' });
  const before = (await c.call('history.list', {})).revisions.at(-1).revision as number;
  let to = before;
  // An edit holds at most 1,000 ops.
  for (let first = 1; first <= DIFF_NODES; first += 1_000) {
    const ops = many(1_000, (i) => ({ op: 'addNode', function: big, node: { id: first + i, op: 'const' } }));
    to = (await c.call('edit.apply', { ops })).revision;
  }
  await c.call('lock.release', { functions: [big] });
  return { from: before, to };
}

describe('the cost of a call', () => {
  const t = useServers();

  it('charges a diff by the nodes and edges it lists, not as one request', async () => {
    const s = await t.server({ rateLimit: 10, rateBurst: 100 });
    const a = await t.agent(s, 'a');
    const [big] = await addFunctions(a, ['big']);
    const diff = await bigFunction(a, big);
    // 3,000 nodes at 50 per request: two diffs cost 120 requests, more than the burst of 100.
    await a.call('history.diff', diff);
    await a.call('history.diff', diff);
    const refused = await a.fail('session.ping');
    expect(refused.data).toMatchObject({ type: 'RATE_LIMITED', limit: 'rateLimit' });
    expect(refused.data!.retryAfterMs).toBeGreaterThan(1_000);
  });
});
