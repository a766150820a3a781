import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { isLockstepError, LockstepClient, LockstepClientError } from '../../src/client/index.ts';
import { addFns, next, useSdk } from '../helpers/sdk.ts';

/** Rejection of a promise that must fail, as a LockstepClientError. */
async function failure(p: Promise<unknown>): Promise<LockstepClientError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof LockstepClientError)) throw new Error(`expected a LockstepClientError, got ${String(err)}`);
  return err;
}

describe('SDK errors carry the protocol fields', () => {
  const t = useSdk();

  it('LOCK_DENIED: code, type, retryable, retryAfterMs and the blockers', async () => {
    const s = await t.server();
    const [a, b] = await Promise.all([t.client(s, 'a'), t.client(s, 'b')]);
    const [f] = (await addFns(a, ['f'])) as [number];
    await a.acquire({ functions: [f], mode: 'write', ttlMs: 60_000, description: 'mine' });
    const err = await failure(b.lock.acquire({ functions: [f], mode: 'write' }));
    expect(err).toMatchObject({
      name: 'LockstepClientError',
      type: 'LOCK_DENIED',
      code: 423,
      retryable: true,
      method: 'lock.acquire',
    });
    expect(err.retryAfterMs).toBeGreaterThan(50_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(err.data).toMatchObject({
      type: 'LOCK_DENIED',
      blockers: [
        {
          resource: { program: 'main', function: f },
          holders: [{ name: 'a', mode: 'write', description: 'mine' }],
          queueLength: 0,
        },
      ],
    });
    expect(err.is('LOCK_DENIED', 'DEADLOCK')).toBe(true);
    expect(isLockstepError(err, 'CONFLICT')).toBe(false);
  });

  it('CONFLICT with diffs, NOT_HELD, NOT_FOUND, FORBIDDEN and invalid params', async () => {
    const s = await t.server();
    const a = await t.client(s, 'a');
    const watcher = await t.client(s, 'w', { role: 'observer' });
    const [f] = (await addFns(a, ['f'])) as [number];
    const old = await a.function.get({ function: f });
    const lock = await a.acquire({ functions: [f], mode: 'write' });
    await a.edit.apply({ ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }], fences: lock.fences });
    const conflict = await failure(
      a.edit.apply({
        ops: [{ op: 'addNode', function: f, node: { id: 2, op: 'const' } }],
        expectedHashes: { [f]: old.hash },
      }),
    );
    expect(conflict).toMatchObject({ type: 'CONFLICT', code: 409, retryable: false });
    expect(conflict.data.conflicts).toMatchObject([
      {
        functionId: f,
        expectedHash: old.hash,
        currentHash: expect.any(String),
        diff: { nodes: { added: [{ id: 1 }] } },
      },
    ]);

    const notHeld = await failure(watcher.lock.status({ program: 'nope' }));
    expect(notHeld).toMatchObject({ type: 'NOT_FOUND', code: 404, retryable: false });
    await lock.release();
    expect(await failure(a.lock.release({ functions: [f] }))).toMatchObject({
      type: 'NOT_HELD',
      code: 409,
      data: { resources: [{ program: 'main', function: f }] },
    });
    expect(await failure(watcher.lock.acquire({ functions: [f], mode: 'read' }))).toMatchObject({
      type: 'FORBIDDEN',
      code: 403,
      data: { role: 'observer' },
    });
    const invalid = await failure(a.call('lock.acquire', { functions: [f], mode: 'exclusive' } as never));
    expect(invalid).toMatchObject({ type: 'INVALID_PARAMS', code: -32602, retryable: false });
    expect(invalid.data.issues).toEqual([expect.objectContaining({ path: ['mode'] })]);
  });

  it('refuses a call over the server message limit locally, and the session goes on', async () => {
    const s = await t.server({ maxMessageBytes: 1024 });
    const a = await t.client(s, 'a');
    const [f] = (await addFns(a, ['f'])) as [number];
    const err = await failure(
      a.edit.apply({
        ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const', attrs: { text: 'x'.repeat(2000) } } }],
      }),
    );
    expect(err).toMatchObject({ type: 'PAYLOAD_TOO_LARGE', code: 413, retryable: false, data: { limit: 1024 } });
    expect((await a.session.ping()).time).toEqual(expect.any(String));
  });
});

const HELLO = {
  sessionId: '5f0c2f8e-5d0c-4f7a-9a55-0f6b8f1f7c11',
  name: 'x',
  role: 'agent',
  protocol: 1,
  server: { name: 'lockstep', version: '0' },
  heartbeatMs: 15_000,
  lock: { defaultTtlMs: 1000, minTtlMs: 100, maxTtlMs: 10_000, warningMs: 100 },
  limits: {
    maxMessageBytes: 1 << 20,
    hardMaxMessageBytes: 1 << 23,
    maxBufferedBytes: 1 << 22,
    maxBatch: 64,
    maxDescription: 256,
  },
};

interface Call {
  id: number;
  method: string;
  params?: unknown;
}

describe('SDK against a scripted server', () => {
  const servers: WebSocketServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((w) => new Promise((resolve) => w.close(resolve))));
  });

  /** Says hello, then hands every other call to `script` (which answers, or not, when it likes). */
  async function scripted(
    script: (call: Call, reply: (result: unknown) => void) => void = () => undefined,
  ): Promise<{ url: string; wss: WebSocketServer }> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    servers.push(wss);
    await new Promise((resolve) => wss.once('listening', resolve));
    wss.on('connection', (ws) =>
      ws.on('message', (data) => {
        const call = JSON.parse(data.toString()) as Call;
        const reply = (result: unknown) => ws.send(JSON.stringify({ jsonrpc: '2.0', id: call.id, result }));
        if (call.method === 'session.hello') reply(HELLO);
        else script(call, reply);
      }),
    );
    return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`, wss };
  }

  it('times a call out with TIMEOUT, and reports an error frame nobody asked for as an error event', async () => {
    const { url, wss } = await scripted();
    const c = await LockstepClient.connect({ url, reconnect: false });
    try {
      const err = await failure(c.session.ping({}, { timeoutMs: 30 }));
      expect(err).toMatchObject({ type: 'TIMEOUT', code: 0, retryable: true, method: 'session.ping' });
      const stray = next(c, 'error');
      for (const ws of wss.clients)
        ws.send(
          JSON.stringify({
            jsonrpc: '2.0',
            id: null,
            error: {
              code: 413,
              message: 'too big',
              data: { type: 'PAYLOAD_TOO_LARGE', retryable: false, bytes: 9, limit: 1 },
            },
          }),
        );
      const [e] = await stray;
      expect(e).toMatchObject({ type: 'PAYLOAD_TOO_LARGE', code: 413, data: { bytes: 9 } });
    } finally {
      await c.close();
    }
  });

  it('gives back a lock granted after its acquire timed out', async () => {
    const grant = {
      resource: { program: 'main', function: 3 },
      mode: 'write',
      fence: 7,
      expiresAt: '2026-01-01T00:00:00.000Z',
    };
    let answerLate!: () => void;
    let released!: (params: unknown) => void;
    const releasedWith = new Promise((resolve) => (released = resolve));
    const { url } = await scripted((call, reply) => {
      if (call.method === 'lock.acquire') answerLate = () => reply({ status: 'granted', grants: [grant] });
      if (call.method === 'lock.release') {
        released(call.params);
        reply({ released: [grant.resource] });
      }
      if (call.method === 'session.ping') reply({ time: grant.expiresAt });
    });
    const c = await LockstepClient.connect({ url, reconnect: false });
    try {
      expect(await failure(c.acquire({ functions: [3], mode: 'write', timeoutMs: 20 }))).toMatchObject({
        type: 'TIMEOUT',
      });
      answerLate();
      expect(await releasedWith).toEqual({ program: 'main', functions: [3] });
      // Replies come in order: once the ping is answered, the release's answer has been read.
      await c.session.ping();
      expect(c.held()).toEqual([]);
    } finally {
      await c.close();
    }
  });

  it('fails to connect with CONNECT_FAILED', async () => {
    const { url, wss } = await scripted();
    await new Promise((resolve) => wss.close(resolve));
    servers.length = 0;
    expect(await failure(LockstepClient.connect({ url, reconnect: false }))).toMatchObject({
      type: 'CONNECT_FAILED',
      retryable: true,
    });
  });
});
