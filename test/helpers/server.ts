import { createServer } from 'node:net';
import { afterEach, inject } from 'vitest';
import { start, type LockstepServer, type StartOptions } from '../../src/server.ts';
import { TestClient } from './client.ts';
import { freshDatabase } from './postgres.ts';

/**
 * The store a test server gets unless the test names one: ':memory:', or with LOCKSTEP_TEST_DB=
 * postgres (the "postgres" vitest project) a new database in the run's PostgreSQL.
 */
async function testDb(): Promise<string> {
  return process.env.LOCKSTEP_TEST_DB === 'postgres' ? freshDatabase(inject('postgresUrl')) : ':memory:';
}

/**
 * A real server on an ephemeral port with an empty store (see testDb), stopped after each test
 * together with every client the test opened.
 */
export function useServers() {
  const servers: LockstepServer[] = [];
  const clients: TestClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.stop('test over')));
  });
  return {
    async server(options: StartOptions = {}): Promise<LockstepServer> {
      const s = await start({ port: 0, db: options.db ?? (await testDb()), logLevel: 'silent', ...options });
      servers.push(s);
      return s;
    },
    async agent(s: LockstepServer, name: string, role: 'agent' | 'observer' = 'agent'): Promise<TestClient> {
      const c = await TestClient.open(s.url, name, role);
      clients.push(c);
      return c;
    },
    async raw(s: LockstepServer): Promise<TestClient> {
      const c = await TestClient.connect(s.url);
      clients.push(c);
      return c;
    },
  };
}

/** Adds functions to a program under its structure lock and returns their ids by name. */
export async function addFunctions<const N extends readonly string[]>(
  c: TestClient,
  names: N,
  program = 'main',
): Promise<{ [K in keyof N]: number }> {
  await c.call('lock.acquire', { program, structure: true, mode: 'write' });
  const r = await c.call('edit.apply', { program, ops: names.map((name) => ({ op: 'addFunction', name })) });
  await c.call('lock.release', { program, structure: true });
  return names.map((n) => r.created.find((x: { name: string }) => x.name === n).id) as { [K in keyof N]: number };
}

/** One write acquire and release: a well-behaved agent's round trip, which must keep working. */
export async function roundTrip(c: TestClient, f: number): Promise<void> {
  const g = await c.call('lock.acquire', { functions: [f], mode: 'write' });
  if (g.status !== 'granted') throw new Error(`round trip on ${f} was not granted at once: ${JSON.stringify(g)}`);
  await c.call('lock.release', { functions: [f] });
}

/** A port nothing listens on now (a server started on it soon after gets it, bar a rare race). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
