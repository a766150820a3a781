import pg from 'pg';
import { afterEach } from 'vitest';
import { TestClient } from '../helpers/client.ts';
import { kill, type Node as Process, spawnNode } from './leader-nodes.ts';
import { until } from '../helpers/until.ts';

// A node started to be the next leader (the previous one killed with SIGKILL), agents that keep
// what they need to resume elsewhere, and the database reads the failover tests check with.

export interface Node {
  child: Process['child'];
  url: string;
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
}

/** A node on `db`, once it leads: a killed leader's lease must run out first (short timing). */
export async function startNode(db: string, args: readonly string[] = []): Promise<Node> {
  const node = await spawnNode(db, args);
  try {
    await until('the node leads', 15_000, async () => ((await node.health()).status === 200 ? true : undefined));
  } catch (err) {
    await kill(node);
    throw err;
  }
  return { child: node.child, url: node.url, kill: () => kill(node) };
}

/** An agent that keeps what it needs to resume elsewhere. */
export interface Agent {
  client: TestClient;
  sessionId: string;
  secret: string;
  hello: any;
}

export async function agent(url: string, name: string, role: 'agent' | 'observer' = 'agent'): Promise<Agent> {
  const client = await TestClient.connect(url);
  const hello = await client.call('session.hello', { protocol: 1, name, role });
  client.sessionId = hello.sessionId;
  return { client, sessionId: hello.sessionId, secret: hello.resumeSecret, hello };
}

/** Resumes `a` on the node at `url`: the hello result, or the error. */
export async function resume(url: string, a: Agent): Promise<{ client: TestClient; frame: any }> {
  const client = await TestClient.connect(url);
  const frame = await client.request('session.hello', {
    protocol: 1,
    resume: { sessionId: a.sessionId, secret: a.secret },
  });
  client.sessionId = a.sessionId;
  return { client, frame };
}

/** Nodes and clients a test starts, ended after each test: killed, and closed. */
export function useNodes() {
  const nodes: Node[] = [];
  const clients: TestClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(nodes.splice(0).map((n) => n.kill()));
  });
  return {
    async node(db: string, args: readonly string[] = []): Promise<Node> {
      const n = await startNode(db, args);
      nodes.push(n);
      return n;
    },
    async open(url: string, name: string, role: 'agent' | 'observer' = 'agent'): Promise<Agent> {
      const a = await agent(url, name, role);
      clients.push(a.client);
      return a;
    },
    async resumed(url: string, a: Agent): Promise<{ client: TestClient; frame: any }> {
      const r = await resume(url, a);
      clients.push(r.client);
      return r;
    },
  };
}

/** Runs `query` until `done` holds of its rows, within 5 s (the journal writes in the background). */
export async function untilRows(
  db: string,
  query: string,
  values: unknown[],
  done: (rows: any[]) => boolean,
): Promise<any[]> {
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    return await until(`rows of ${query} to match`, 5_000, async () => {
      const { rows } = await client.query(query, values);
      return done(rows) ? rows : undefined;
    });
  } finally {
    await client.end();
  }
}

export async function sql(db: string, query: string, values: unknown[] = []): Promise<any[]> {
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    return (await client.query(query, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Holds the lock journal's head row in a transaction of its own: every journal commit of the
 * leader waits on it (its lease is renewed as usual) until the returned function rolls it back.
 */
export async function blockJournal(db: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  await client.query('BEGIN');
  await client.query('SELECT seq FROM cluster_journal_head FOR UPDATE');
  return async () => {
    await client.query('ROLLBACK');
    await client.end();
  };
}
