import { createServer, connect, type Socket } from 'node:net';
import { afterEach } from 'vitest';
import type { LockstepServer } from '../../src/server.ts';

/** Nothing listens on port 1: a connect there is refused at once. */
export const REFUSED = 'ws://127.0.0.1:1/ws';

export interface ServerProxy {
  /** ws://127.0.0.1:<proxy port>/ws */
  url: string;
  /** Open connections stop forwarding either way, without closing: a network partition. */
  blackhole(): void;
  /** Open connections stop forwarding the server's data only: replies are lost, requests arrive. */
  mute(): void;
  /** New connections are accepted but never reach the server (a socket open that hangs). */
  stall(): void;
  /** Cuts the open connections (both ends), as a crashed network path would. */
  dropAll(): void;
  /** The next connection made to the proxy, client side. */
  nextConnection(): Promise<Socket>;
}

/** Tiny TCP proxies in front of a server, destroyed after each test. */
export function useServerProxies() {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((c) => c()));
  });
  return async function proxy(s: LockstepServer): Promise<ServerProxy> {
    const target = new URL(s.url);
    const pairs: Array<{ client: Socket; upstream: Socket | undefined; dead: boolean; muted: boolean }> = [];
    let stalled = false;
    let waiters: Array<(socket: Socket) => void> = [];
    const server = createServer((client) => {
      const pair = { client, upstream: undefined as Socket | undefined, dead: false, muted: false };
      pairs.push(pair);
      client.on('error', () => undefined);
      const w = waiters;
      waiters = [];
      for (const resolve of w) resolve(client);
      if (stalled) return;
      const upstream = connect(Number(target.port), target.hostname);
      pair.upstream = upstream;
      upstream.on('error', () => undefined);
      client.on('data', (d) => {
        if (!pair.dead) upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (!pair.dead && !pair.muted) client.write(d);
      });
      client.on('close', () => {
        if (!pair.dead) upstream.destroy();
      });
      upstream.on('close', () => {
        if (!pair.dead) client.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    cleanups.push(async () => {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return {
      url: `ws://127.0.0.1:${port}/ws`,
      blackhole() {
        for (const p of pairs) p.dead = true;
      },
      mute() {
        for (const p of pairs) p.muted = true;
      },
      stall() {
        stalled = true;
      },
      dropAll() {
        for (const p of pairs) {
          p.client.destroy();
          p.upstream?.destroy();
        }
      },
      nextConnection() {
        return new Promise((resolve) => waiters.push(resolve));
      },
    };
  };
}
