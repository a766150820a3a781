import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { spawnLockstep } from '../cli/run.ts';
import { TestClient } from '../helpers/client.ts';

// A Lockstep node as its own process on a PostgreSQL database, to be killed with SIGKILL: "becoming
// leader" is, until the leadership lease lands, a process starting on the store.

export interface Node {
  child: ChildProcess;
  url: string;
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
}

export async function startNode(db: string, args: readonly string[] = []): Promise<Node> {
  const child = spawnLockstep(['serve', '--port', '0', '--db', db, '--log-level', 'silent', ...args]);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^lockstep listening on (ws:\/\/\S+)$/.exec(line);
      if (m !== null) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error(`node exited before listening: ${stderr}`)));
  });
  return {
    child,
    url,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
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

/** Runs `query` until `done` holds of its rows, a bounded number of times (the journal writes in the background). */
export async function untilRows(
  db: string,
  query: string,
  values: unknown[],
  done: (rows: any[]) => boolean,
): Promise<any[]> {
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    for (let attempt = 0; attempt < 200; attempt++) {
      const { rows } = await client.query(query, values);
      if (done(rows)) return rows;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`rows of ${query} never matched`);
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
