import { get } from 'node:https';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { StatusSnapshot } from '../../src/cli/status.ts';
import { ConfigError } from '../../src/config.ts';
import { start } from '../../src/server.ts';
import { lockstep } from '../helpers/cli.ts';
import { addFns, useSdk } from '../helpers/sdk.ts';
import { useCertificates } from '../helpers/tls.ts';
import { useBridges } from '../helpers/mcp-bridges.ts';

// --tls-cert and --tls-key: the server itself serves wss:// and https:// (no proxy), and the SDK,
// the CLI and the MCP bridge reach it trusting a CA of the test's own (made by openssl now).

function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).once('error', reject);
  });
}

// Several CLI and bridge processes (each compiles through tsx): slow on a loaded machine.
describe('TLS without a proxy', { timeout: 120_000 }, () => {
  const t = useSdk();
  const bridge = useBridges();
  const certificates = useCertificates();

  it('serves wss:// sessions, the dashboard and /healthz over https; the SDK, the CLI and the bridge trust a custom CA', async () => {
    const certs = certificates();
    const s = await t.server({ tlsCert: certs.certFile, tlsKey: certs.keyFile });
    expect(s.url).toBe(`wss://127.0.0.1:${s.port}/ws`);
    expect(s.dashboardUrl).toBe(`https://127.0.0.1:${s.port}/`);

    const ca = certs.ca;
    class TrustingWebSocket extends WebSocket {
      constructor(url: string) {
        super(url, { ca });
      }
    }
    const agent = await t.client(s, 'secure', { WebSocket: TrustingWebSocket });
    const [f] = (await addFns(agent, ['f'])) as [number];
    const lock = await agent.acquire({ functions: [f], mode: 'write' });
    expect(lock.fences[String(f)]).toBeGreaterThan(0);

    const [health, page] = await Promise.all([
      httpsGet(`https://127.0.0.1:${s.port}/healthz`, ca),
      httpsGet(s.dashboardUrl, ca),
    ]);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', sessions: 1 });
    expect(page).toMatchObject({ status: 200, body: expect.stringContaining('<title>Lockstep</title>') });

    const trust = { NODE_EXTRA_CA_CERTS: certs.caFile };
    const plain = `ws://127.0.0.1:${s.port}/ws`;
    const [status, wrongScheme, untrusted] = await Promise.all([
      lockstep(['status', '--json', '--url', s.url], trust),
      lockstep(['status', '--url', plain], trust),
      lockstep(['status', '--url', s.url]),
    ]);
    expect(status.stderr).toBe('');
    const snap = JSON.parse(status.stdout) as StatusSnapshot;
    expect(snap.nodes).toMatchObject([{ url: s.url, http: 200, health: { status: 'ok' } }]);
    expect(snap.locks).toMatchObject([{ resource: { program: 'main', function: f }, holders: [{ name: 'secure' }] }]);
    expect(wrongScheme.code).toBe(2);
    expect(wrongScheme.stderr).toMatch(
      new RegExp(
        `\\nthe server at 127\\.0\\.0\\.1:${s.port} speaks wss://: use --url wss://127\\.0\\.0\\.1:${s.port}/ws\\n$`,
      ),
    );
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/^lockstep: cannot connect to wss:\/\/.*certificate/);

    const b = await bridge(s.url, 'mcp-secure', [], trust);
    const overview = await b.call('program_overview', {});
    expect(overview.isError).toBe(false);
    expect(overview.text).toContain('write-locked by secure');
  });

  it('refuses a certificate without its key, a file it cannot read, and what is not PEM, naming the options', async () => {
    const certs = certificates();
    const base = { port: 0, db: ':memory:', logLevel: 'silent' } as const;
    await expect(start({ ...base, tlsCert: certs.certFile })).rejects.toThrow(
      new ConfigError('tlsCert needs tlsKey too: TLS takes a certificate and its key'),
    );
    await expect(start({ ...base, tlsCert: '/nonexistent.pem', tlsKey: certs.keyFile })).rejects.toThrow(
      '--tls-cert: cannot read "/nonexistent.pem": no such file',
    );
    await expect(start({ ...base, tlsCert: certs.keyFile, tlsKey: certs.certFile })).rejects.toThrow(
      /^--tls-cert and --tls-key: not a PEM certificate and its private key/,
    );
    const flags = await lockstep(['serve', '--port', '0', '--tls-key', certs.keyFile]);
    expect(flags).toMatchObject({
      code: 2,
      stderr: 'lockstep: --tls-key needs --tls-cert too: TLS takes a certificate and its key\n',
    });
  });
});
