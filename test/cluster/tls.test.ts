import { afterEach, describe, expect, inject, it } from 'vitest';
import type { StatusSnapshot } from '../../src/cli/status.ts';
import { VERSION } from '../../src/version.ts';
import { lockstep } from '../helpers/cli.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { useCertificates } from '../helpers/tls.ts';
import { kill, type Node, spawnNode } from './leader-nodes.ts';

// A cluster served over wss:// without a proxy: each node with --tls-cert and --tls-key advertises
// its wss:// URL, a standby names it, and lockstep status finds the leader and every node's health
// over https, trusting the CA through NODE_EXTRA_CA_CERTS (and without it, says what to do). The
// certificates are made by the openssl commands of docs/security.md.

const nodes: Node[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(kill));
});

describe('a cluster over TLS', () => {
  const certificates = useCertificates();

  it('nodes serve wss://, a standby names the leader by its wss:// URL, status reaches both', {
    timeout: 180_000,
  }, async () => {
    const certs = certificates();
    const db = await freshDatabase(inject('postgresUrl'));
    const tls = ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile];
    const leader = await spawnNode(db, tls);
    nodes.push(leader);
    expect(leader.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/ws$/);
    const trust = { NODE_EXTRA_CA_CERTS: certs.caFile };
    const standby = await spawnNode(db, tls);
    nodes.push(standby);
    const ran = await lockstep(['status', '--json', '--url', `${standby.url},${leader.url}`], trust);
    expect(ran.stderr).toBe('');
    const snap = JSON.parse(ran.stdout) as StatusSnapshot;
    expect(snap.url).toBe(leader.url);
    expect(snap.nodes.map((n) => [n.url, n.http, n.health?.role, n.health?.leader])).toEqual([
      [standby.url, 503, 'standby', leader.url],
      [leader.url, 200, 'leader', leader.url],
    ]);

    // Without the CA: the failure names every node tried and what to do, after the version line.
    const untrusted = await lockstep(['status', '--url', `${standby.url},${leader.url}`]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stdout).toMatch(
      new RegExp(`^version: lockstep ${VERSION} \\(this command\\), server unknown \\(no node answered\\)\\n`),
    );
    expect(untrusted.stderr).toContain(`\ntried ${standby.url}, ${leader.url}\n`);
    expect(untrusted.stderr).toMatch(
      /the certificate of 127\.0\.0\.1:\d+ is not trusted \([A-Z_]+\): for a private CA, set NODE_EXTRA_CA_CERTS/,
    );
  });
});
