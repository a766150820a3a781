// What every compared system offers the workloads: agents that lock numbered resources.

export type Mode = 'read' | 'write';

export interface LockAgent {
  /**
   * Takes the locks on resources `rs` (indices 0..n-1; each system maps them to its own names),
   * waiting for them when `wait`. Resolves with the performance.now() at which the grant arrived.
   */
  acquire(rs: readonly number[], mode: Mode): Promise<number>;
  /** Resolves once the release is acknowledged. `sent` gets the time its request went out. */
  release(rs: readonly number[], sent?: (at: number) => void): Promise<void>;
}

export interface LockSystem {
  /** Row label in the tables. */
  readonly name: string;
  /** The client library that drives it, with its version: its CPU is the bench process's. */
  readonly driver: string;
  /** Which workloads it takes part in: the floor only has round trips, not locks. */
  readonly locks: boolean;
  /** The server's process id, when it is a process of this machine: its CPU is then measured too. */
  readonly serverPid?: number | undefined;
  /**
   * `resources` is how many distinct lockable things the workload uses; `readers` says some
   * acquires will be shared (a peer without shared locks in its plain recipe switches to another).
   */
  connect(count: number, resources: number, readers?: boolean): Promise<LockAgent[]>;
  disconnect(): Promise<void>;
  stop(): Promise<void>;
}
