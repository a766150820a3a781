import { get } from 'node:https';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { StatusSnapshot } from '../../src/cli/status.ts';
import { lockstep } from '../helpers/cli.ts';
import { addFns, useSdk } from '../helpers/sdk.ts';
import { describeWithNginx, type Nginx, startNginx } from '../helpers/nginx.ts';
import { useCertificates } from '../helpers/tls.ts';

// The reverse-proxy example of docs/security.md: Debian's nginx runs docs/nginx-lockstep.conf
// (its addresses and certificate paths replaced, nothing else) in front of a plain server, and
// agents, the CLI and browsers reach it over wss:// and https:// with a CA of the test's own.

const SNIPPET = fileURLToPath(new URL('../../docs/nginx-lockstep.conf', import.meta.url));

function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).once('error', reject);
  });
}

describeWithNginx('Lockstep behind nginx (docs/nginx-lockstep.conf)', { timeout: 60_000 }, () => {
  const t = useSdk();
  const certificates = useCertificates();
  let nginx: Nginx | undefined;
  afterEach(async () => {
    await nginx?.stop();
    nginx = undefined;
  });

  it('proxies wss:// sessions, the dashboard and /healthz over TLS, with the timeouts long sessions need', async () => {
    const certs = certificates();
    const s = await t.server();
    nginx = await startNginx(SNIPPET, (port) => [
      ['listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`],
      ['server_name lockstep.example.com;', 'server_name 127.0.0.1;'],
      ['/etc/ssl/lockstep/fullchain.pem', certs.certFile],
      ['/etc/ssl/lockstep/privkey.pem', certs.keyFile],
      ['server 127.0.0.1:7420;', `server 127.0.0.1:${s.port};`],
    ]);
    // What keeps an idle session through the proxy: an hour each way, the server's idle timeout.
    expect(nginx.config).toMatch(/^\s+proxy_read_timeout 1h;$/m);
    expect(nginx.config).toMatch(/^\s+proxy_send_timeout 1h;$/m);
    expect(nginx.config).toMatch(/^\s+proxy_set_header Connection \$connection_upgrade;$/m);

    const wss = `wss://127.0.0.1:${nginx.port}/ws`;
    // The SDK trusts the test's CA through `ws`'s TLS options (a process would use NODE_EXTRA_CA_CERTS).
    const ca = certs.ca;
    class TrustingWebSocket extends WebSocket {
      constructor(url: string) {
        super(url, { ca });
      }
    }
    const agent = await t.client(s, 'through-nginx', { url: wss, WebSocket: TrustingWebSocket });
    const [f] = (await addFns(agent, ['f'])) as [number];
    await agent.withLocks({ functions: [f], mode: 'write' }, async (lock) => {
      const { hash } = await agent.function.get({ function: f });
      await agent.edit.apply({
        ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }],
        expectedHashes: { [f]: hash },
        fences: lock.fences,
      });
    });
    expect(agent.url).toBe(wss);
    expect((await agent.agent.list()).agents.map((a) => a.name)).toEqual(['through-nginx']);

    const [health, dashboard] = await Promise.all([
      httpsGet(`https://127.0.0.1:${nginx.port}/healthz`, ca),
      httpsGet(`https://127.0.0.1:${nginx.port}/`, ca),
    ]);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', sessions: 1 });
    expect(dashboard).toMatchObject({ status: 200, body: expect.stringContaining('<title>Lockstep</title>') });

    // The CLI through the proxy: the custom CA the usual Node way, and without it a clear refusal.
    const [trusted, untrusted] = await Promise.all([
      lockstep(['status', '--json', '--url', wss], { NODE_EXTRA_CA_CERTS: certs.caFile }),
      lockstep(['status', '--url', wss]),
    ]);
    expect(trusted.stderr).toBe('');
    const snap = JSON.parse(trusted.stdout) as StatusSnapshot;
    expect(snap.url).toBe(wss);
    expect(snap.nodes).toMatchObject([{ url: wss, http: 200, health: { status: 'ok' } }]);
    expect(snap.programs).toEqual([{ name: 'main', revision: 2, functions: 1 }]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/^lockstep: cannot connect to wss:\/\/127\.0\.0\.1:\d+\/ws: .*certificate/);
  });
});
