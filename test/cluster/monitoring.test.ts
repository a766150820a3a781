import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { LockstepClient } from '../../src/client/index.ts';
import type { StatusSnapshot } from '../../src/cli/status.ts';
import { VERSION } from '../../src/version.ts';
import { lockstep, UP_COLUMN } from '../helpers/cli.ts';
import { addFns } from '../helpers/sdk.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { kill, leaderOf, type Node, spawnNode } from './leader-nodes.ts';

// What operators watch a cluster with, against a real leader and standby: the Grafana dashboard and
// the Prometheus alert rules in docs/ use only metrics these nodes' /metrics show (as the rules
// expect: the cluster's on every node, the rest on the leader), each with a sample from the start
// (a counter's first event is counted by increase() only from an earlier 0), and lockstep status
// shows both nodes.

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

/** The PromQL expressions of the alert rules: every `expr:` line (each rule keeps its expression on one). */
function ruleExpressions(): string[] {
  const exprs = [...read('docs/prometheus-alerts.yml').matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1] as string);
  const alerts = [...read('docs/prometheus-alerts.yml').matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]);
  expect(exprs).toHaveLength(alerts.length);
  return exprs;
}

/** The PromQL expressions of the dashboard's panels. */
function dashboardExpressions(): string[] {
  const dashboard = JSON.parse(read('docs/grafana-dashboard.json')) as {
    panels: Array<{ type: string; targets?: Array<{ expr: string }> }>;
  };
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

/** One scrape: each metric family's type, and every sample's labels by series name. */
interface Exposition {
  types: Map<string, string>;
  samples: Map<string, Array<Record<string, string>>>;
}

async function scrape(node: Node): Promise<Exposition> {
  const text = await (await fetch(`${node.http}/metrics`)).text();
  const types = new Map<string, string>();
  const samples = new Map<string, Array<Record<string, string>>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1] as string, type[2] as string);
    const sample = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (sample === null) continue;
    const labels = Object.fromEntries(
      [...(sample[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]),
    );
    samples.set(sample[1] as string, [...(samples.get(sample[1] as string) ?? []), labels]);
  }
  return { types, samples };
}

/** A series name's metric family: a histogram's _bucket, _count and _sum are its own. */
function familyOf(series: string, e: Exposition): string {
  const base = series.replace(/_(bucket|count|sum)$/, '');
  return base !== series && e.types.get(base) === 'histogram' ? base : series;
}

/** Selectors `name{label op "value", ...}` of an expression: the series, and the labels it matches on. */
function selectors(
  expr: string,
): Array<{ series: string; matchers: Array<{ label: string; op: string; value: string }> }> {
  return [...expr.matchAll(/\b(lockstep_\w+)(?:\{([^}]*)\})?/g)].map((m) => ({
    series: m[1] as string,
    matchers: [...(m[2] ?? '').matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)].map((l) => ({
      label: l[1] as string,
      op: l[2] as string,
      value: l[3] as string,
    })),
  }));
}

/**
 * What an expression asks of a node's /metrics that it does not show: a family without its TYPE,
 * or a selector without one sample it matches (with no sample, Prometheus' increase() misses a
 * counter's first event and an alert on it stays silent).
 */
function missingFrom(e: Exposition, exprs: readonly string[], only?: RegExp): string[] {
  const missing = new Set<string>();
  for (const expr of exprs)
    for (const { series, matchers } of selectors(expr)) {
      const family = familyOf(series, e);
      if (only !== undefined && !only.test(family)) continue;
      if (!e.types.has(family)) {
        missing.add(`${family} (in ${expr})`);
        continue;
      }
      const matching = (e.samples.get(series) ?? []).filter((labels) =>
        matchers.every(({ label, op, value }) => {
          const v = labels[label];
          if (op === '=') return v === value;
          if (op === '!=') return v !== undefined && v !== value;
          return v !== undefined;
        }),
      );
      if (matching.length === 0)
        missing.add(
          `a sample of ${series}${matchers.length === 0 ? '' : `{${matchers.map((m) => `${m.label}${m.op}"${m.value}"`).join(',')}}`} (in ${expr})`,
        );
    }
  return [...missing];
}

/** The label values a family's samples carry for `label`. */
function valuesOf(e: Exposition, series: string, label: string): string[] {
  return [...new Set((e.samples.get(series) ?? []).map((l) => l[label] as string))].sort();
}

/** Metrics every node shows, standbys included: the rules that count across the cluster use these. */
const EVERY_NODE = /^lockstep_(cluster_|store_up$|process_|nodejs_)/;

const nodes: Node[] = [];
const clients: LockstepClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(nodes.splice(0).map(kill));
});

describe('monitoring a cluster', () => {
  it('the dashboard and the alert rules use only metrics a leader and a standby show, with samples from the start; lockstep status shows both nodes', {
    timeout: 180_000,
  }, async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const leader = await spawnNode(db);
    nodes.push(leader);
    await leaderOf([leader], 15_000);
    const standby = await spawnNode(db);
    nodes.push(standby);
    const rules = ruleExpressions();
    const panels = dashboardExpressions();

    // Fresh, no session yet: every series the rules and panels select has a sample (at 0), on the
    // leader, and on the standby those docs/monitoring.md says every node has.
    const [freshLeader, freshStandby] = await Promise.all([scrape(leader), scrape(standby)]);
    expect(missingFrom(freshLeader, [...rules, ...panels])).toEqual([]);
    expect(missingFrom(freshStandby, [...rules, ...panels], EVERY_NODE)).toEqual([]);
    const reasons = ['clocks', 'deadline', 'fences', 'open-failed', 'taken-over', 'write-refused'];
    for (const fresh of [freshLeader, freshStandby]) {
      expect(valuesOf(fresh, 'lockstep_cluster_step_downs_total', 'reason')).toEqual(reasons);
      expect(valuesOf(fresh, 'lockstep_cluster_lease_renewal_seconds_count', 'outcome')).toEqual([
        'error',
        'lost',
        'ok',
      ]);
      expect(valuesOf(fresh, 'lockstep_cluster_role', 'role')).toEqual(['leader', 'standby', 'taking-over']);
    }
    expect(freshLeader.samples.get('lockstep_sessions')).toHaveLength(4);
    expect(valuesOf(freshLeader, 'lockstep_edits_total', 'kind')).toEqual(['edit', 'redo', 'restore', 'undo']);
    expect(valuesOf(freshLeader, 'lockstep_lock_grants_total', 'kind')).toEqual(['immediate', 'queued']);

    // uptimeMs is the node's since it started, across takeovers; leadingForMs the leader's alone.
    const [onLead, onStand] = await Promise.all([leader.health(), standby.health()]);
    expect(onLead.body.leadingForMs).toEqual(expect.any(Number));
    expect(onLead.body.uptimeMs).toBeGreaterThanOrEqual(onLead.body.leadingForMs as number);
    expect(onStand.body).not.toHaveProperty('leadingForMs');
    expect(onStand.body.uptimeMs).toEqual(expect.any(Number));

    // Some of everything the panels plot: a queued request granted, an edit, a denial.
    const a = await LockstepClient.connect({ url: leader.url, name: 'a' });
    const b = await LockstepClient.connect({ url: leader.url, name: 'b' });
    clients.push(a, b);
    const [f] = (await addFns(a, ['f'])) as [number];
    const held = await a.acquire({ functions: [f], mode: 'write' });
    await b.acquire({ functions: [f], mode: 'write', wait: false }).catch(() => undefined);
    const waiting = b.acquire({ functions: [f], mode: 'write' });
    await held.release();
    await (await waiting).release();

    expect(rules.length).toBeGreaterThanOrEqual(10);
    expect(panels.length).toBeGreaterThanOrEqual(20);
    const used = new Set([...rules, ...panels].flatMap((e) => selectors(e).map((s) => s.series)));
    for (const name of [
      'lockstep_cluster_role',
      'lockstep_cluster_takeovers_total',
      'lockstep_cluster_step_downs_total',
      'lockstep_store_up',
      'lockstep_queue_oldest_wait_seconds',
      'lockstep_lock_wait_seconds_bucket',
      'lockstep_sessions_max',
      'lockstep_lock_expiries_total',
    ])
      expect(used).toContain(name);

    const [onLeader, onStandby] = await Promise.all([scrape(leader), scrape(standby)]);
    expect(missingFrom(onLeader, [...rules, ...panels])).toEqual([]);
    expect(missingFrom(onStandby, [...rules, ...panels], EVERY_NODE)).toEqual([]);
    // The standby has no coordinator: the leader's metrics are not there (the rules do not expect them).
    expect(onStandby.types.has('lockstep_locks_held')).toBe(false);

    const ran = await lockstep(['status', '--json', '--url', `${standby.url},${leader.url}`]);
    expect(ran.code).toBe(0);
    const snap = JSON.parse(ran.stdout) as StatusSnapshot;
    expect(snap.url).toBe(leader.url);
    expect(snap.nodes.map((n) => [n.url, n.http, n.health?.role, n.health?.leader, n.health?.version])).toEqual([
      [standby.url, 503, 'standby', leader.url, VERSION],
      [leader.url, 200, 'leader', leader.url, VERSION],
    ]);
    const text = await lockstep(['status', '--url', `${leader.url},${standby.url}`]);
    expect(text.stdout).toMatch(
      new RegExp(
        `\\n {2}${leader.url}\\s+leader\\s+1\\s+${leader.url}\\s+ok \\(200\\)\\s+\\d+\\s+${UP_COLUMN}\\s+${VERSION}\\n`,
      ),
    );
    expect(text.stdout).toMatch(
      new RegExp(
        `\\n {2}${standby.url}\\s+standby\\s+1\\s+${leader.url}\\s+standby \\(503\\)\\s+0\\s+${UP_COLUMN}\\s+${VERSION}\\n`,
      ),
    );
  });
});
