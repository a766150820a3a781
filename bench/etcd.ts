import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { freePort, packageVersion, waitFor } from './proc.ts';
import type { LockAgent, LockSystem, Mode } from './systems.ts';

/** Where the data dir goes: tmpfs, so that etcd's WAL fsyncs cost nothing (see ETCD_NOTE). */
const SHM = '/dev/shm';
const LEASE_TTL_S = 600;
/** Every RPC has a deadline, so a stuck peer cannot hold the bench. */
const RPC_DEADLINE_MS = 30_000;

export const ETCD_NOTE =
  'a single member; data dir on tmpfs (/dev/shm), so the write-ahead log fsync that every Lock and Unlock (each a Raft write) does is a memory operation, the closest etcd 3.4 comes to no persistence (`--unsafe-no-fsync` arrived in 3.5)';

type Unary<Req, Res> = (
  req: Req,
  opts: { deadline: number },
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => void;
interface LockClient extends grpc.Client {
  Lock: Unary<{ name: Buffer; lease: string }, { key: Buffer }>;
  Unlock: Unary<{ key: Buffer }, unknown>;
}
interface LeaseClient extends grpc.Client {
  LeaseGrant: Unary<{ TTL: number }, { ID: string }>;
}
type Ctor<T> = new (addr: string, creds: grpc.ChannelCredentials, opts: grpc.ClientOptions) => T;

const defs = protoLoader.loadSync(['etcd-v3lock.proto', 'etcd-rpc.proto'], {
  includeDirs: [fileURLToPath(new URL('.', import.meta.url))],
  longs: String,
});
const pkg = grpc.loadPackageDefinition(defs) as unknown as {
  v3lockpb: { Lock: Ctor<LockClient> };
  etcdserverpb: { Lease: Ctor<LeaseClient> };
};
// Each agent its own HTTP/2 connection, as each Lockstep agent has its own socket: grpc-js would
// otherwise share one connection among all clients of the same target.
const OWN_CONNECTION: grpc.ClientOptions = { 'grpc.use_local_subchannel_pool': 1 };

function rpc<Req, Res>(client: grpc.Client, fn: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) =>
    fn.call(client, req, { deadline: Date.now() + RPC_DEADLINE_MS }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

/**
 * etcd's v3 lock service: Lock blocks server-side until the caller's key is the oldest under the
 * name (FIFO by revision) and returns the key; Unlock deletes it. It has no shared mode and no
 * multi-name lock, so a batch takes its names one by one in sorted order and a read is exclusive.
 */
class Agent implements LockAgent {
  private readonly held = new Map<number, Buffer>();

  constructor(
    private readonly client: LockClient,
    private readonly lease: string,
  ) {}

  async acquire(rs: readonly number[], _mode: Mode): Promise<number> {
    for (const r of [...rs].sort((a, b) => a - b)) {
      const { key } = await rpc(this.client, this.client.Lock, { name: Buffer.from(`lock/${r}`), lease: this.lease });
      this.held.set(r, key);
    }
    return performance.now();
  }

  async release(rs: readonly number[], sent?: (at: number) => void): Promise<void> {
    const done = Promise.all(
      rs.map((r) => {
        const key = this.held.get(r);
        this.held.delete(r);
        if (key === undefined) throw new Error(`etcd: ${r} not held`);
        return rpc(this.client, this.client.Unlock, { key });
      }),
    );
    sent?.(performance.now());
    await done;
  }
}

export class EtcdSystem implements LockSystem {
  readonly name = 'etcd (v3 Lock)';
  readonly driver = packageVersion('@grpc/grpc-js');
  readonly locks = true;
  private clients: grpc.Client[] = [];

  private constructor(
    private readonly proc: ChildProcess,
    private readonly addr: string,
    private readonly dataDir: string,
  ) {}

  static available(): boolean {
    return spawnSync('etcd', ['--version']).status === 0;
  }

  static version(): string {
    return (
      String(spawnSync('etcd', ['--version']).stdout)
        .split('\n')[0]
        ?.trim() ?? ''
    );
  }

  /** `under`: where the data dir goes; tmpfs by default (ETCD_NOTE), the disk for bench/cluster.ts. */
  static async start(under = existsSync(SHM) ? SHM : tmpdir()): Promise<EtcdSystem> {
    const [client, peer] = [await freePort(), await freePort()];
    const dataDir = mkdtempSync(join(under, 'lockstep-bench-etcd-'));
    const c = `http://127.0.0.1:${client}`;
    const p = `http://127.0.0.1:${peer}`;
    const proc = spawn(
      'etcd',
      [
        '--name',
        'bench',
        '--data-dir',
        dataDir,
        '--listen-client-urls',
        c,
        '--advertise-client-urls',
        c,
        '--listen-peer-urls',
        p,
        '--initial-advertise-peer-urls',
        p,
        '--initial-cluster',
        `bench=${p}`,
        '--logger',
        'zap',
        '--log-level',
        'error',
      ],
      { stdio: 'ignore' },
    );
    const addr = `127.0.0.1:${client}`;
    const lease = new pkg.etcdserverpb.Lease(addr, grpc.credentials.createInsecure(), {});
    await waitFor('etcd', 20_000, async () => (await rpc(lease, lease.LeaseGrant, { TTL: 5 })).ID !== undefined);
    lease.close();
    return new EtcdSystem(proc, addr, dataDir);
  }

  async connect(count: number): Promise<LockAgent[]> {
    const creds = grpc.credentials.createInsecure();
    const leases = new pkg.etcdserverpb.Lease(this.addr, creds, {});
    this.clients.push(leases);
    return Promise.all(
      Array.from({ length: count }, async () => {
        const { ID } = await rpc(leases, leases.LeaseGrant, { TTL: LEASE_TTL_S });
        const client = new pkg.v3lockpb.Lock(this.addr, creds, OWN_CONNECTION);
        this.clients.push(client);
        return new Agent(client, ID);
      }),
    );
  }

  async disconnect(): Promise<void> {
    for (const c of this.clients) c.close();
    this.clients = [];
  }

  async stop(): Promise<void> {
    await this.disconnect();
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill('SIGTERM');
    await Promise.race([exited, sleep(5_000)]);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
