import { freePort } from '../../bench/proc.ts';
import { freshDatabase, type PostgresCluster, startPostgres } from '../helpers/postgres.ts';
import { startDatabaseProxy, type DatabaseProxy } from '../helpers/database-proxy.ts';
import { kill, leaderOf, type Node, spawnNode } from './leader-nodes.ts';

// Three nodes on a PostgreSQL of the test's own (so that it can be restarted), each reaching the
// database through a proxy of its own (so that one node can be cut off), on fixed ports (so that a
// killed node comes back at the URL the agents know).

/** From a fault to one node leading: a lease, a look, a takeover, a store load, on a loaded machine. */
export const TAKEOVER_BOUND_MS = 20_000;

export interface Member {
  readonly index: number;
  readonly url: string;
  readonly proxy: DatabaseProxy;
  process: Node;
}

export class WorkloadCluster {
  private constructor(
    readonly postgres: PostgresCluster,
    /** The database itself, not through any proxy: what the checks read. */
    readonly db: string,
    readonly members: Member[],
    private readonly args: readonly string[],
  ) {}

  static async start(size: number, args: readonly string[]): Promise<WorkloadCluster> {
    const postgres = await startPostgres();
    const db = await freshDatabase(postgres.url);
    const cluster = new WorkloadCluster(postgres, db, [], args);
    for (let index = 0; index < size; index++) {
      const proxy = await startDatabaseProxy(db);
      const port = await freePort();
      const process = await cluster.spawn(proxy, port);
      cluster.members.push({ index, url: process.url, proxy, process });
    }
    return cluster;
  }

  get urls(): string[] {
    return this.members.map((m) => m.url);
  }

  /** The one member that leads at an epoch of at least minEpoch. */
  async leader(minEpoch = 1, among: readonly Member[] = this.members): Promise<{ member: Member; epoch: number }> {
    const found = await leaderOf(
      among.map((m) => m.process),
      TAKEOVER_BOUND_MS,
      minEpoch,
    );
    return { member: among.find((m) => m.process === found.node)!, epoch: found.epoch };
  }

  /** kill -9, then the same node started again on its port. */
  async crash(member: Member): Promise<void> {
    await kill(member.process);
    await this.restart(member);
  }

  async restart(member: Member): Promise<void> {
    member.process = await this.spawn(member.proxy, Number(new URL(member.url).port));
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => kill(m.process)));
    await Promise.all(this.members.map((m) => m.proxy.close()));
    await this.postgres.stop();
  }

  private spawn(proxy: DatabaseProxy, port: number): Promise<Node> {
    return spawnNode(proxy.url, [...this.args, '--port', String(port)]);
  }
}
