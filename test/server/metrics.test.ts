import { describe, expect, it } from 'vitest';
import type { LockstepServer } from '../../src/server.ts';
import { addFunctions, useServers } from '../helpers/server.ts';

type Samples = Map<string, number>;

function key(name: string, labels: Record<string, string> = {}): string {
  return `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(',')}}`;
}

/** Prometheus text format to `name{label=value,...}` (labels sorted) -> value. */
async function scrape(s: LockstepServer): Promise<Samples> {
  const res = await fetch(`http://127.0.0.1:${s.port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const out: Samples = new Map();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]),
    );
    out.set(key(m[1]!, labels), Number(m[3]));
  }
  return out;
}

describe('/metrics', () => {
  const t = useServers();

  it('moves every counter by exactly the activity, and gauges show the state', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const b = await t.agent(s, 'b');
    const c = await t.agent(s, 'c');
    await t.agent(s, 'o', 'observer');
    const [f, g, h] = await addFunctions(a, ['f', 'g', 'h']);
    const before = await scrape(s);

    // A grant, a denial, a queued wait granted on release.
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    expect((await b.fail('lock.acquire', { functions: [f], mode: 'write' })).data?.type).toBe('LOCK_DENIED');
    expect((await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true })).status).toBe('queued');
    await a.call('lock.release', { functions: [f] });
    await b.notification('lock.granted');

    // A deadlock refused: a holds g and waits for f, which b holds; b asking for g closes the cycle.
    await a.call('lock.acquire', { functions: [g], mode: 'write' });
    expect((await a.call('lock.acquire', { functions: [f], mode: 'write', wait: true })).status).toBe('queued');
    expect((await b.fail('lock.acquire', { functions: [g], mode: 'write', wait: true })).data?.type).toBe('DEADLOCK');

    // A conflict, then a committed edit.
    const stale = { [String(f)]: '0'.repeat(64) };
    const addNode = { op: 'addNode', function: f, node: { id: 1, op: 'const' } };
    expect((await b.fail('edit.apply', { ops: [addNode], expectedHashes: stale })).data?.type).toBe('CONFLICT');
    await b.call('edit.apply', { ops: [addNode] });

    // An expiry, then a read lock on what it freed.
    await a.call('lock.acquire', { functions: [h], mode: 'write', ttlMs: 100 });
    await a.notification('lock.expired');
    await c.call('lock.acquire', { functions: [h], mode: 'read' });

    const after = await scrape(s);
    const moved = (name: string, labels: Record<string, string> = {}) =>
      (after.get(key(name, labels)) ?? 0) - (before.get(key(name, labels)) ?? 0);
    const now = (name: string, labels: Record<string, string> = {}) => after.get(key(name, labels));

    expect(moved('lockstep_lock_grants_total', { kind: 'immediate' })).toBe(4);
    expect(moved('lockstep_lock_grants_total', { kind: 'queued' })).toBe(1);
    expect(moved('lockstep_lock_denials_total')).toBe(1);
    expect(moved('lockstep_deadlocks_refused_total')).toBe(1);
    expect(moved('lockstep_lock_expiries_total')).toBe(1);
    expect(moved('lockstep_edit_conflicts_total')).toBe(1);
    expect(moved('lockstep_edits_total', { kind: 'edit' })).toBe(1);
    expect(moved('lockstep_slow_consumers_dropped_total')).toBe(0);

    const count = 'lockstep_request_duration_seconds_count';
    expect(moved(count, { method: 'lock.acquire', outcome: 'ok' })).toBe(6);
    expect(moved(count, { method: 'lock.acquire', outcome: 'LOCK_DENIED' })).toBe(1);
    expect(moved(count, { method: 'lock.acquire', outcome: 'DEADLOCK' })).toBe(1);
    expect(moved(count, { method: 'edit.apply', outcome: 'ok' })).toBe(1);
    expect(moved(count, { method: 'edit.apply', outcome: 'CONFLICT' })).toBe(1);
    expect(now('lockstep_request_duration_seconds_bucket', { method: 'lock.acquire', outcome: 'ok', le: '+Inf' })).toBe(
      now(count, { method: 'lock.acquire', outcome: 'ok' }),
    );

    expect(now('lockstep_sessions', { role: 'agent', state: 'connected' })).toBe(3);
    expect(now('lockstep_sessions', { role: 'observer', state: 'connected' })).toBe(1);
    // b holds f and a holds g (write); c holds h (read); a still waits for f.
    expect(now('lockstep_locks_held', { mode: 'write' })).toBe(2);
    expect(now('lockstep_locks_held', { mode: 'read' })).toBe(1);
    expect(now('lockstep_queue_length', { stat: 'total' })).toBe(1);
    expect(now('lockstep_queue_length', { stat: 'max' })).toBe(1);

    // b's queued request was granted once it had waited; a's is still waiting.
    expect(moved('lockstep_lock_wait_seconds_count')).toBe(1);
    expect(moved('lockstep_lock_wait_seconds_sum')).toBeGreaterThan(0);
    expect(now('lockstep_lock_wait_seconds_bucket', { le: '+Inf' })).toBe(now('lockstep_lock_wait_seconds_count'));
    expect(now('lockstep_queue_oldest_wait_seconds')).toBeGreaterThan(0);
    expect(now('lockstep_store_up')).toBe(1);
    expect(now('lockstep_sessions_max')).toBe(20_000);
  });

  it('shows no wait while nothing is queued, and the configured session cap', async () => {
    const s = await t.server({ maxSessions: 7 });
    const samples = await scrape(s);
    expect(samples.get(key('lockstep_queue_oldest_wait_seconds'))).toBe(0);
    expect(samples.get(key('lockstep_sessions_max'))).toBe(7);
    expect(samples.get(key('lockstep_lock_wait_seconds_count'))).toBe(0);
  });

  it("names prom-client's process and Node metrics lockstep_process_* and lockstep_nodejs_*, without a doubled word", async () => {
    const names = [...new Set([...(await scrape(await t.server())).keys()].map((k) => k.slice(0, k.indexOf('{'))))];
    expect(names).toContain('lockstep_process_cpu_user_seconds_total');
    expect(names).toContain('lockstep_nodejs_eventloop_lag_seconds');
    expect(names.filter((n) => /(^|_)(\w+)_\2_/.test(n))).toEqual([]);
  });
});
