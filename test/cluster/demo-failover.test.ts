import { afterEach, describe, expect, inject, it } from 'vitest';
import { collect, lineMatching, spawnLockstep } from '../helpers/cli.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { kill, leaderOf, type Node, spawnNode } from './leader-nodes.ts';

// `lockstep demo` given a cluster's nodes rides through a failover (docs/cluster.md, "Three nodes": the
// demo rides through a failover): the leader is killed mid-run, the demo says so, and ends with its summary, exit 0.

const nodes: Node[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(kill));
});

describe('lockstep demo against a cluster', () => {
  it('survives a kill -9 of the leader: says when the failover happens, ends with exit 0 and its summary', {
    timeout: 240_000,
  }, async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const first = await spawnNode(db);
    nodes.push(first);
    await leaderOf([first], 15_000);
    for (let i = 0; i < 2; i++) nodes.push(await spawnNode(db));
    const urls = nodes.map((n) => n.url).join(',');

    const demo = spawnLockstep(['demo', '--url', urls, '--seconds', '25', '--agents', '3', '--seed', '7']);
    const done = collect(demo);
    // Killed once the agents are at work on it.
    await lineMatching(demo, /-> revision \d+$/);
    await kill(first);
    const ran = await done;

    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(new RegExp(`\\] lost the connection to ${first.url}; looking for the leader\\n`));
    const failover = /\] failover: the leader is now (ws:\/\/\S+) \(was (ws:\/\/\S+)\); the agents resume there\n/.exec(
      ran.stdout,
    );
    expect(failover?.[2]).toBe(first.url);
    const leader = await leaderOf(nodes.slice(1), 15_000, 2);
    expect(failover?.[1]).toBe(leader.node.url);
    expect(ran.stdout).toMatch(/^edits committed: \d+ \(program main went from revision \d+ to \d+\)$/m);
    expect(ran.stdout).toMatch(new RegExp(`^failovers: 1 \\(now on ${leader.node.url}\\)$`, 'm'));
    // Edits went on after the failover: revisions committed by the new leader.
    const after = ran.stdout.slice(ran.stdout.indexOf('] failover:'));
    expect(after).toMatch(/-> revision \d+\n/);
  });
});
