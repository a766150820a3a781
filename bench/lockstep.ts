import type { StartOptions } from '../src/server.ts';
import { forkServer, packageVersion, type Child } from './proc.ts';
import { RpcSocket } from './rpc-socket.ts';
import type { LockAgent, LockSystem, Mode } from './systems.ts';

/**
 * The bench lifts the per-session rate limit (default 2,000 requests/s): one closed-loop agent
 * alone sends more than that, and the limit is a policy, not a cost being measured.
 */
export const BENCH_SERVER: StartOptions = {
  db: ':memory:',
  logLevel: 'silent',
  rateLimit: 1_000_000,
  rateBurst: 1_000_000,
};

/** Lockstep and the floor are driven by the same bare client, so its cost is equal on both. */
export const RPC_DRIVER = `bench/rpc-socket.ts on ${packageVersion('ws')}`;

class Agent implements LockAgent {
  constructor(
    readonly sock: RpcSocket,
    private readonly ids: readonly number[],
  ) {}

  acquire(rs: readonly number[], mode: Mode): Promise<number> {
    const functions = rs.map((r) => this.id(r));
    return new Promise((resolve, reject) => {
      this.sock.send('lock.acquire', { functions, mode, wait: true }, (reply, at) => {
        const result = reply.result as { status: string; ticket?: string } | undefined;
        if (result?.status === 'granted') resolve(at);
        else if (result?.status === 'queued' && result.ticket !== undefined)
          this.sock.onGranted(result.ticket, resolve);
        else reject(new Error(`lock.acquire: ${JSON.stringify(reply.error)}`));
      });
    });
  }

  release(rs: readonly number[], sent?: (at: number) => void): Promise<void> {
    const functions = rs.map((r) => this.id(r));
    const done = this.sock.call('lock.release', { functions }).then(() => undefined);
    sent?.(performance.now());
    return done;
  }

  private id(r: number): number {
    const id = this.ids[r];
    if (id === undefined) throw new Error(`resource ${r} was not created`);
    return id;
  }
}

export async function hello(sock: RpcSocket, name: string): Promise<void> {
  await sock.call('session.hello', { protocol: 1, name });
}

/** Lockstep locks only functions that exist: makes `count` of them, returns their ids in order. */
export async function createFunctions(url: string, count: number, first = 0): Promise<number[]> {
  const sock = await RpcSocket.open(url);
  await hello(sock, 'bench-setup');
  await sock.call('lock.acquire', { structure: true, mode: 'write' });
  const ids: number[] = [];
  for (let base = 0; base < count; base += 1000) {
    const ops = Array.from({ length: Math.min(1000, count - base) }, (_, i) => ({
      op: 'addFunction',
      name: `f${first + base + i}`,
    }));
    const { result } = await sock.call('edit.apply', { ops });
    for (const c of result.created as Array<{ id: number }>) ids.push(c.id);
  }
  await sock.call('lock.release', { structure: true });
  await sock.close();
  return ids;
}

export class LockstepSystem implements LockSystem {
  readonly driver = RPC_DRIVER;
  readonly locks = true;
  private ids: number[] = [];
  private socks: RpcSocket[] = [];

  private constructor(
    readonly server: Child,
    readonly name: string,
  ) {}

  static async start(
    execArgv: string[] = [],
    opts: StartOptions = BENCH_SERVER,
    stdout?: (line: string) => void,
  ): Promise<LockstepSystem> {
    return new LockstepSystem(await forkServer('./lockstep-server.ts', opts, execArgv, [], stdout), 'Lockstep');
  }

  /** A server started some other way (callgrind-turns.ts: under valgrind). */
  static around(server: Child, name: string): LockstepSystem {
    return new LockstepSystem(server, name);
  }

  /** Another commit's server (baseline.ts), started the same way with the same options. */
  static async startBaseline(
    serverModule: string,
    name: string,
    execArgv: string[] = [],
    stdout?: (line: string) => void,
  ): Promise<LockstepSystem> {
    return new LockstepSystem(
      await forkServer('./lockstep-server.ts', BENCH_SERVER, execArgv, [serverModule], stdout),
      name,
    );
  }

  get url(): string {
    return `ws://127.0.0.1:${this.server.port}/ws`;
  }

  get serverPid(): number | undefined {
    return this.server.proc.pid;
  }

  async connect(count: number, resources: number): Promise<LockAgent[]> {
    if (this.ids.length < resources)
      this.ids.push(...(await createFunctions(this.url, resources - this.ids.length, this.ids.length)));
    this.socks = await Promise.all(Array.from({ length: count }, () => RpcSocket.open(this.url)));
    await Promise.all(this.socks.map((s, i) => hello(s, `agent-${i}`)));
    return this.socks.map((s) => new Agent(s, this.ids));
  }

  async disconnect(): Promise<void> {
    await Promise.all(this.socks.map((s) => s.close()));
    this.socks = [];
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}

class EchoAgent implements LockAgent {
  constructor(private readonly sock: RpcSocket) {}

  async acquire(rs: readonly number[], mode: Mode): Promise<number> {
    return (await this.sock.call('lock.acquire', { functions: rs.map((r) => r + 1), mode, wait: true })).at;
  }

  release(rs: readonly number[], sent?: (at: number) => void): Promise<void> {
    const done = this.sock.call('lock.release', { functions: rs.map((r) => r + 1) }).then(() => undefined);
    sent?.(performance.now());
    return done;
  }
}

/** The floor: the same frames to a server that only answers them. */
export class EchoFloor implements LockSystem {
  readonly name = 'ws echo (floor)';
  readonly driver = RPC_DRIVER;
  readonly locks = false;
  private socks: RpcSocket[] = [];

  private constructor(readonly server: Child) {}

  static async start(): Promise<EchoFloor> {
    return new EchoFloor(await forkServer('./echo-server.ts', {}));
  }

  async connect(count: number): Promise<LockAgent[]> {
    const url = `ws://127.0.0.1:${this.server.port}/`;
    this.socks = await Promise.all(Array.from({ length: count }, () => RpcSocket.open(url)));
    return this.socks.map((s) => new EchoAgent(s));
  }

  async disconnect(): Promise<void> {
    await Promise.all(this.socks.map((s) => s.close()));
    this.socks = [];
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}
