import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { LockstepClient, WebSocketConstructor } from '../../src/client/index.ts';
import { type ServerProxy, useServerProxies } from '../helpers/server-proxy.ts';
import { addFns, next, useSdk } from '../helpers/sdk.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Frame {
  method: string;
  params?: { key?: string; ops?: Array<{ op: string }> };
}

/** `ws` sockets that keep every request the client sends. */
function recordingSockets() {
  const sent: Frame[] = [];
  class Recording extends WebSocket {
    constructor(url: string) {
      super(url);
      const send = this.send.bind(this);
      this.send = ((data: string) => {
        sent.push(JSON.parse(data) as Frame);
        send(data);
      }) as typeof this.send;
    }
  }
  return { WebSocket: Recording as unknown as WebSocketConstructor, sent };
}

/** The edit.apply requests that add nodes (the setup's addFunction edit aside). */
function nodeEdits(sent: readonly Frame[]): Frame[] {
  return sent.filter((f) => f.method === 'edit.apply' && f.params?.ops?.[0]?.op === 'addNode');
}

describe('SDK idempotency keys', () => {
  const t = useSdk();
  const proxy = useServerProxies();

  /**
   * `a` (through proxy `p`) sends an edit that the server commits but whose reply never reaches
   * it, and then loses its socket. Resolves with the edit's promise, the revision committed, and the
   * client's next disconnected and connected events.
   */
  async function editWithLostReply(
    a: LockstepClient,
    p: ServerProxy,
    observer: LockstepClient,
    f: number,
    options: { node?: number; signal?: AbortSignal; timeoutMs?: number } = {},
  ) {
    const { node = 1, ...callOptions } = options;
    const committed = next(observer, 'event', (e) => e.type === 'committed');
    p.mute();
    const edit = a.edit.apply({ ops: [{ op: 'addNode', function: f, node: { id: node, op: 'const' } }] }, callOptions);
    edit.catch(() => undefined);
    const [event] = await committed;
    const disconnected = next(a, 'disconnected');
    const connected = next(a, 'connected');
    p.dropAll();
    return { edit, revision: event.data.revision as number, disconnected, connected };
  }

  async function setup(sessionGraceMs: number | undefined, reconnect = { initialDelayMs: 10, maxDelayMs: 50 }) {
    const s = await t.server(sessionGraceMs === undefined ? {} : { sessionGraceMs });
    const p = await proxy(s);
    const sockets = recordingSockets();
    const a = await t.client(s, 'a', {
      url: p.url,
      WebSocket: sockets.WebSocket,
      reconnect: { ...reconnect, jitter: 0 },
    });
    const observer = await t.client(s, 'observer', { role: 'observer' });
    const [f] = (await addFns(a, ['f'])) as [number];
    await a.acquire({ functions: [f], mode: 'write' });
    await observer.events.subscribe({ topics: ['edits'] });
    return { a, p, observer, f, sent: sockets.sent };
  }

  it('sends a fresh key with every edit, undo, redo and restore, and none with other calls', async () => {
    const s = await t.server();
    const sockets = recordingSockets();
    const a = await t.client(s, 'a', { WebSocket: sockets.WebSocket });
    const [f] = (await addFns(a, ['f'])) as [number];
    await a.checkpoint.create({ name: 'one' });
    await a.acquire({ functions: [f], mode: 'write' });
    const edit = await a.edit.apply({ ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }] });
    const undo = await a.history.undo({ revision: edit.revision });
    await a.history.redo({ revision: undo.revision });
    await a.checkpoint.restore({ name: 'one' });

    const keyed = ['edit.apply', 'history.undo', 'history.redo', 'checkpoint.restore'];
    const keys = sockets.sent.filter((x) => keyed.includes(x.method)).map((x) => x.params?.key);
    expect(keys).toHaveLength(5);
    for (const key of keys) expect(key).toMatch(UUID_V4);
    expect(new Set(keys).size).toBe(5);
    const others = sockets.sent.filter((x) => !keyed.includes(x.method));
    expect(others.map((x) => x.method)).toContain('lock.acquire');
    for (const x of others) expect(x.params?.key).toBeUndefined();
  });

  it("keeps a caller's key", async () => {
    const s = await t.server();
    const sockets = recordingSockets();
    const a = await t.client(s, 'a', { WebSocket: sockets.WebSocket });
    const [f] = (await addFns(a, ['f'])) as [number];
    await a.acquire({ functions: [f], mode: 'write' });
    const add = (id: number) =>
      a.edit.apply({ ops: [{ op: 'addNode', function: f, node: { id, op: 'const' } }], key: 'mine' });
    const first = await add(1);
    // The same key again: the server answers with the first result and applies nothing.
    expect(await add(2)).toEqual(first);
    expect(nodeEdits(sockets.sent).map((x) => x.params?.key)).toEqual(['mine', 'mine']);
    expect((await a.function.get({ function: f })).version).toBe(2);
  });

  it('sends an edit whose reply was lost again, with its key, on the resumed session: applied once, answered with the first result', async () => {
    const { a, p, observer, f, sent } = await setup(30_000);
    const { edit, revision, connected } = await editWithLostReply(a, p, observer, f);

    const result = await edit;
    expect((await connected)[0].resumed).toBe(true);
    expect(result.revision).toBe(revision);
    expect(result.functions).toMatchObject([{ id: f, version: 2 }]);
    const [first, retry] = nodeEdits(sent);
    expect(retry?.params?.key).toBe(first?.params?.key);
    expect(nodeEdits(sent)).toHaveLength(2);
    expect((await a.function.get({ function: f })).version).toBe(2);
    expect((await a.history.list({})).revisions.map((r) => r.revision)).toEqual([1, revision]);
  });

  it('fails with DISCONNECTED and does not send it again when the session was lost', async () => {
    const { a, p, observer, f, sent } = await setup(undefined);
    const { edit, connected } = await editWithLostReply(a, p, observer, f);

    await expect(edit).rejects.toMatchObject({ type: 'DISCONNECTED' });
    expect((await connected)[0].resumed).toBe(false);
    expect(nodeEdits(sent)).toHaveLength(1);
    expect((await a.function.get({ function: f })).version).toBe(2);
  });

  it('does not send it again once the call is aborted or timed out while reconnecting', async () => {
    const slow = { initialDelayMs: 1_500, maxDelayMs: 1_500 };
    const { a, p, observer, f, sent } = await setup(30_000, slow);
    const abort = new AbortController();
    const aborted = await editWithLostReply(a, p, observer, f, { signal: abort.signal });
    await aborted.disconnected;
    abort.abort();
    await expect(aborted.edit).rejects.toMatchObject({ type: 'ABORTED' });
    await aborted.connected;

    const timedOut = await editWithLostReply(a, p, observer, f, { node: 2, timeoutMs: 1_000 });
    await expect(timedOut.edit).rejects.toMatchObject({ type: 'TIMEOUT' });
    await timedOut.connected;
    await a.session.ping();
    expect(nodeEdits(sent)).toHaveLength(2);
  });
});
