import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { addFns, next, useSdk } from '../helpers/sdk.ts';
import { type Bridge, useBridges } from '../helpers/mcp-bridges.ts';

// Each bridge is a fresh node process on the sources (tsx): a few seconds to start on a loaded machine.
describe('lockstep mcp', { timeout: 60_000 }, () => {
  const t = useSdk();
  const bridge = useBridges();

  it('lists every tool with a description and an input schema that is valid JSON Schema', async () => {
    const s = await t.server();
    const a = await bridge(s.url, 'a');
    const { tools } = await a.client.listTools();
    expect(tools.map((x) => x.name).sort()).toEqual([
      'edit_apply',
      'function_read',
      'history',
      'lock_acquire',
      'lock_release',
      'path_lock',
      'path_release',
      'path_status',
      'program_overview',
    ]);
    const ajv = new Ajv({ strict: false });
    for (const x of tools) {
      expect(x.description?.length, x.name).toBeGreaterThan(40);
      expect(x.inputSchema.type, x.name).toBe('object');
      expect(ajv.validateSchema(x.inputSchema), `${x.name}: ${ajv.errorsText()}`).toBe(true);
      expect(() => ajv.compile(x.inputSchema), x.name).not.toThrow();
    }
    const acquire = tools.find((x) => x.name === 'lock_acquire')?.inputSchema;
    expect(ajv.validate(acquire as object, { functions: ['parse', 3], mode: 'write' })).toBe(true);
    expect(ajv.validate(acquire as object, { functions: [3], mode: 'exclusive' })).toBe(false);
  });

  it("takes a cluster's nodes in --url and works through the one that serves", async () => {
    const s = await t.server();
    // The first address refuses connections, as a node that is down does.
    const a = await bridge(`ws://127.0.0.1:1/ws,${s.url}`, 'a');
    const overview = await a.call('program_overview', {});
    expect(overview.isError).toBe(false);
    expect(a.stderr()).toContain(`connected to ${s.url} as a`);
  });

  it('queues the second agent with its position as progress and grants it on the first one release', async () => {
    const s = await t.server();
    const setup = await t.client(s, 'setup');
    await addFns(setup, ['parse']);
    const a = await bridge(s.url, 'a');
    const b = await bridge(s.url, 'b');
    const first = await a.call('lock_acquire', { functions: ['parse'], mode: 'write', description: 'refactor' });
    expect(first.isError).toBe(false);
    expect(first.text).toContain('granted: write lock on parse');

    const progress: string[] = [];
    let queued!: () => void;
    const isQueued = new Promise<void>((resolve) => (queued = resolve));
    const second = b.call(
      'lock_acquire',
      { functions: ['parse'], mode: 'write' },
      {
        onProgress: (message) => {
          progress.push(message);
          queued();
        },
      },
    );
    await isQueued;
    expect(progress).toEqual(['queued: position 1 for parse (id 1)']);
    const released = await a.call('lock_release', {});
    // The holder may have been told of its waiter first (lock.waiters, coalesced): at the top, if so.
    expect(released.text).toMatch(/(^|\n\n)released: parse \(id 1\)$/);
    const granted = await second;
    expect(granted.isError).toBe(false);
    expect(granted.data).toMatchObject({ status: 'granted', waited: true, grants: [{ mode: 'write' }] });
  });

  it('tells an unchanged queue position again while it waits, so a client resetting its timeout on progress keeps its place', async () => {
    const s = await t.server();
    const setup = await t.client(s, 'setup');
    const [parse] = (await addFns(setup, ['parse'])) as [number];
    const held = await setup.acquire({ functions: [parse], mode: 'write' });
    const pathHeld = await setup.acquire({ paths: ['src'], mode: 'write' });
    const b = await bridge(s.url, 'b', ['--progress-every-ms', '100']);
    // The client times out after 1 s without progress; 12 repeats 100 ms apart outlast that.
    const progress: string[] = [];
    let enough!: () => void;
    const heard = new Promise<void>((resolve) => (enough = resolve));
    const waiting = b.call(
      'lock_acquire',
      { functions: ['parse'], mode: 'write' },
      {
        timeout: 1_000,
        onProgress: (message) => {
          progress.push(message);
          if (progress.length === 12) enough();
        },
      },
    );
    await Promise.race([heard, waiting.then(() => expect.unreachable('answered before it was granted'))]);
    expect(progress[0]).toBe('queued: position 1 for parse (id 1)');
    for (const p of progress.slice(1)) expect(p).toMatch(/^queued: position 1 for parse \(id 1\) \(waited \d+ s\)$/);
    await held.release();
    expect((await waiting).data).toMatchObject({ status: 'granted', waited: true });

    const again = new Promise<string>((resolve) => {
      void b.call(
        'path_lock',
        { paths: ['src/a.ts'], mode: 'write' },
        { onProgress: (message) => message.includes('waited') && resolve(message) },
      );
    });
    expect(await again).toMatch(/^queued: position 1 for src\/a\.ts in main \(waited \d+ s\)$/);
    await pathHeld.release();
  });

  it("answers a wait past timeoutMs with the tool's own parameter name, and gives up the queue place", async () => {
    const s = await t.server();
    const setup = await t.client(s, 'setup');
    const [f] = (await addFns(setup, ['f'])) as [number];
    const held = await setup.acquire({ functions: [f], mode: 'write' });
    const b = await bridge(s.url, 'b');
    const timedOut = await b.call('lock_acquire', { functions: [f], mode: 'write', timeoutMs: 100 });
    expect(timedOut.isError).toBe(true);
    expect(timedOut.text).toBe(
      'WAIT_TIMEOUT: not granted within the timeoutMs you gave; your place in the queue is given up. ' +
        'Call lock_acquire again to queue anew (at the back), or without timeoutMs to wait for as long as it takes.',
    );
    const [status] = (await setup.lock.status({})).resources;
    expect(status?.queue).toEqual([]);
    await held.release();
  });

  it('withdraws the queued request when the agent cancels a waiting acquire', async () => {
    const s = await t.server();
    const observer = await t.client(s, 'observer');
    const [f] = (await addFns(observer, ['f'])) as [number];
    const held = await observer.acquire({ functions: [f], mode: 'write' });
    const b = await bridge(s.url, 'b');
    await observer.events.subscribe({ topics: ['locks'] });
    const dequeued = next(observer, 'event', (e) => e.type === 'dequeued');
    const cancel = new AbortController();
    const waiting = b.call(
      'lock_acquire',
      { functions: [f], mode: 'write' },
      { signal: cancel.signal, onProgress: () => cancel.abort() },
    );
    await expect(waiting).rejects.toThrow();
    await dequeued;
    const [status] = (await observer.lock.status({})).resources;
    expect(status?.queue).toEqual([]);
    await held.release();
    expect((await observer.lock.status({})).resources).toEqual([]);
  });

  // Both ways a bridge's session can end must free its locks at once, not when their hour-long
  // lease runs out: the agent closing its end of stdio, and the bridge process killed outright.
  const ends = {
    'when the agent closes its end': (a: Bridge) => a.client.close(),
    'when the bridge is killed with SIGKILL': (a: Bridge) => process.kill(a.pid, 'SIGKILL'),
  };
  for (const [how, end] of Object.entries(ends)) {
    it(`ends its session, and so frees its locks at once, ${how}`, async () => {
      const s = await t.server();
      const observer = await t.client(s, 'observer');
      const [f] = (await addFns(observer, ['f'])) as [number];
      const a = await bridge(s.url, 'a');
      await a.call('lock_acquire', { functions: [f], mode: 'write', ttlMs: 3_600_000 });
      await observer.events.subscribe({ topics: ['locks'] });
      const released = next(observer, 'event', (e) => e.type === 'released');
      await end(a);
      await released;
      expect((await observer.lock.status({})).resources).toEqual([]);
      const lock = await observer.acquire({ functions: [f], mode: 'write', wait: false });
      expect(lock.held).toBe(true);
    });
  }

  it('refuses an edit based on a stale read with CONFLICT and the diff since that read', async () => {
    const s = await t.server();
    const other = await t.client(s, 'other');
    const [f] = (await addFns(other, ['f'])) as [number];
    const a = await bridge(s.url, 'a');
    const read = await a.call('function_read', { functions: ['f'] });
    expect(read.text).toContain('f (id 1) version 1');

    await other.withLocks({ functions: [f], mode: 'write' }, (lock) =>
      other.edit.apply({
        ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const', attrs: { value: 7 } } }],
        fences: lock.fences,
      }),
    );
    // The change reached the bridge as a push: it tops the next result.
    const locked = await a.call('lock_acquire', { functions: [f], mode: 'write' });
    expect(locked.text).toMatch(
      /^Since your last call:\n- f \(id 1\), which you read, changed: now version 2 \(by other\)/,
    );
    expect(locked.data.notices).toEqual([expect.stringContaining('changed')]);
    const edit = await a.call('edit_apply', {
      ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'add' } }],
    });
    expect(edit.isError).toBe(true);
    expect(edit.text).toContain('CONFLICT: someone changed these functions since you read them');
    expect(edit.text).toContain('nodes added: #1 const {"value":7}');
    expect(edit.data).toMatchObject({
      error: {
        type: 'CONFLICT',
        data: { conflicts: [{ functionId: f, diff: { nodes: { added: [{ id: 1, op: 'const' }] } } }] },
      },
    });

    await a.call('function_read', { functions: [f] });
    const redo = await a.call('edit_apply', { ops: [{ op: 'addNode', function: f, node: { id: 2, op: 'add' } }] });
    expect(redo.isError, redo.text).toBe(false);
    expect(redo.text).toContain('f (id 1) now version 3');
  });
});
