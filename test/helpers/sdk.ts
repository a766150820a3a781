import { afterEach } from 'vitest';
import { WebSocket } from 'ws';
import {
  LockstepClient,
  type ClientEvents,
  type ClientOptions,
  type WebSocketConstructor,
} from '../../src/client/index.ts';
import type { LockstepServer } from '../../src/server.ts';
import { useServers } from './server.ts';
import { REFUSED } from './server-proxy.ts';

/** Real servers (test/helpers/server.ts) plus SDK clients closed after each test. */
export function useSdk() {
  const t = useServers();
  const clients: LockstepClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  return {
    ...t,
    async client(s: LockstepServer, name: string, options: Partial<ClientOptions> = {}): Promise<LockstepClient> {
      const c = new LockstepClient({
        url: s.url,
        name,
        reconnect: { initialDelayMs: 10, maxDelayMs: 50, jitter: 0 },
        ...options,
      });
      clients.push(c);
      await c.connect();
      return c;
    },
  };
}

/** The next emission of `event` whose arguments match. */
export function next<E extends keyof ClientEvents>(
  c: LockstepClient,
  event: E,
  match: (...args: ClientEvents[E]) => boolean = () => true,
): Promise<ClientEvents[E]> {
  return new Promise((resolve) => {
    const listener = (...args: ClientEvents[E]) => {
      if (!match(...args)) return;
      (c.off as (e: E, l: typeof listener) => void)(event, listener);
      resolve(args);
    };
    (c.on as (e: E, l: typeof listener) => void)(event, listener);
  });
}

/** Adds functions under the structure lock; their ids in the order named. */
export async function addFns(c: LockstepClient, names: readonly string[], program = 'main'): Promise<number[]> {
  const r = await c.withLocks({ program, structure: true, mode: 'write' }, (lock) =>
    c.edit.apply({ program, ops: names.map((name) => ({ op: 'addFunction' as const, name })), fences: lock.fences }),
  );
  return names.map((n) => {
    const created = r.created.find((x) => x.name === n);
    if (created === undefined) throw new Error(`${n} was not created`);
    return created.id;
  });
}

/**
 * Sockets the test can drop at once, without a close handshake (what a dead peer or a heartbeat's
 * terminate looks like to the client), rather than through a short heartbeat that a loaded machine
 * could also trip at any other moment. `drop(n)` makes the next n connects fail; `cut()` drops the
 * socket and fails every connect until `heal()`: the client cut off from every node.
 */
export function droppableSockets() {
  const state = { refuse: 0, last: undefined as DroppableSocket | undefined };
  const target = (url: string) => {
    if (state.refuse === 0) return url;
    state.refuse--;
    return REFUSED;
  };
  class DroppableSocket extends WebSocket {
    constructor(url: string) {
      super(target(url));
      state.last = this;
    }
  }
  const drop = (refuseNext = 0): void => {
    state.refuse = refuseNext;
    state.last?.terminate();
  };
  return {
    WebSocket: DroppableSocket as unknown as WebSocketConstructor,
    drop,
    cut: () => drop(Infinity),
    heal(): void {
      state.refuse = 0;
    },
  };
}
