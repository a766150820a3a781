import type { Logger } from 'pino';
import { Failover, type LeaderContext, type StepDownReason } from './cluster/index.ts';
import type { Clock } from './concurrency/index.ts';
import { limitsOf, lockDefaultsOf, type ServerConfig, sessionGraceOf } from './config.ts';
import { CoordinatorPort, type Tokens } from './coordinator/index.ts';
import { CloseCode } from './protocol/close-codes.ts';
import { isFunction } from './protocol/resource.ts';
import { isPostgresLocation, ProgramService, StoreError, shownLocation } from './service/index.ts';
import type { SocketServer } from './transport/socket-server.ts';
import { VERSION } from './version.ts';

/**
 * One leadership's worth of state (the whole of it on SQLite): the store, the coordinator and, in
 * cluster mode with resume grace, the failover (what the previous leader journaled, and this
 * one's journal). Built together, ended together.
 */
export interface LeaderState {
  programs: ProgramService;
  coordinator: CoordinatorPort;
  failover: Failover | undefined;
}

export interface LeaderStateParts {
  config: ServerConfig;
  clock: Clock;
  logger: Logger;
  tokens: Tokens;
}

/**
 * Builds a leader state: on SQLite once, at start; in cluster mode (a PostgreSQL store) each time
 * this node becomes leader, with the lease's checks (`leader`, src/cluster).
 */
export async function openLeaderState(parts: LeaderStateParts, leader?: LeaderContext): Promise<LeaderState> {
  const { config, clock, logger, tokens } = parts;
  const clustered = isPostgresLocation(config.db);
  const programs = await ProgramService.open({
    path: config.db,
    clock,
    ...(leader === undefined ? {} : { leader: leader.store }),
  });
  const failover = await startFailover(programs, parts);
  const coordinator = new CoordinatorPort({
    clock,
    programs,
    logger,
    version: VERSION,
    heartbeatMs: config.heartbeatMs,
    maxSessions: config.maxSessions,
    limits: limitsOf(config),
    tokens,
    lock: { ...lockDefaultsOf(config), queuePushMs: config.queuePushMs },
    idleTimeoutMs: config.idleTimeoutMs,
    graceMs: sessionGraceOf(config, clustered),
    eventBuffer: config.eventBuffer,
    ...(leader === undefined ? {} : { serving: leader.serving }),
    ...(failover === undefined ? {} : { failover }),
  });
  return { programs, coordinator, failover };
}

/**
 * The failover of a new leader in cluster mode (Failover.forLeader); none on SQLite. A journal
 * that cannot be read stops the state from being built, its store closed.
 */
async function startFailover(programs: ProgramService, { config, clock, logger }: LeaderStateParts) {
  const db = programs.database();
  if (db === undefined) return undefined;
  try {
    return await Failover.forLeader(db, sessionGraceOf(config, true), {
      clock,
      logger,
      // A reply waits for its record at most a lease: a leader that cannot reach the database
      // that long steps down anyway (docs/cluster.md, "What is durable when").
      waitMs: config.leaseTtlMs,
      exists: (r) => programs.hasProgram(r.program) && (!isFunction(r) || programs.hasFunction(r.program, r.function)),
    });
  } catch (err) {
    await programs.close();
    throw new StoreError(shownLocation(config.db), 'its lock journal cannot be read', err);
  }
}

/** How a leader state ends: drained by the server's stop(), or dropped when its node steps down. */
export type LeaderEnd = { drain: string } | { stepDown: StepDownReason };

/**
 * The one way a leader state ends, in this order:
 * 1. Its sessions are told: a drain sends server.shutdown and closes their sockets with 1001 (no
 *    waiter is granted from here on); a step-down closes them with 4002 at once, since a deposed
 *    leader may send nothing more (its sessions go with the state).
 * 2. The close handshakes, bounded: until they end, a call still in flight (an edit's commit) runs
 *    on a coordinator, a journal and a store that are all still there.
 * 3. The coordinator's timers (leases, waits, idle sessions).
 * 4. The journal's last batch: the sessions' ends. A deposed leader's writes are refused by the
 *    lease check (the next leader restores from what was written while this one led).
 * 5. The store, last: everything above may still write to it.
 */
export async function endLeaderState(state: LeaderState, sockets: SocketServer, end: LeaderEnd): Promise<void> {
  if ('drain' in end) state.coordinator.shutdown(end.drain);
  else sockets.closeAll(state.coordinator, CloseCode.NOT_LEADER, `no longer the leader (${end.stepDown})`);
  await sockets.settle(state.coordinator);
  await closeLeaderState(state);
}

/** Steps 3-5 of endLeaderState alone: for a state no socket has reached (start-up failed). */
export async function closeLeaderState(state: LeaderState): Promise<void> {
  state.coordinator.close();
  await state.failover?.close();
  await state.programs.close();
}
