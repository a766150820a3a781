import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addFunctions, useServers } from '../helpers/server.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-edit-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('idempotency keys on edits (docs/cluster.md, rule 6)', () => {
  const { server, agent } = useServers();

  it("answers a retried edit, undo or restore with its first result, and never another session's", async () => {
    const db = join(dir, 'keys.db');
    let s = await server({ db });
    let a = await agent(s, 'a');
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const ops = [{ op: 'addNode', function: f, node: { id: 1, op: 'x' } }];
    const first = await a.call('edit.apply', { ops, key: 'k-edit' });
    expect(await a.call('edit.apply', { ops, key: 'k-edit' })).toEqual(first);
    await a.call('checkpoint.create', { name: 'cp' });
    const undone = await a.call('history.undo', { revision: first.revision, key: 'k-undo' });
    expect(await a.call('history.undo', { revision: first.revision, key: 'k-undo' })).toEqual(undone);
    await a.call('checkpoint.restore', { name: 'cp', key: 'k-restore' });
    await s.stop('restart');

    s = await server({ db });
    a = await agent(s, 'a again');
    // A new session (one server keeps no session across a restart): the keys are not its own, so
    // its calls are checked as any, and without a lock refused.
    expect((await a.fail('edit.apply', { ops, key: 'k-edit' })).data?.type).toBe('LOCK_REQUIRED');
    const history = await a.call('history.list', {});
    expect(history.revisions.map((r: { kind: string }) => r.kind)).toEqual(['edit', 'edit', 'undo', 'restore']);
  });

  it('applies the same key from two sessions as two edits, each retry answered with its own', async () => {
    const s = await server();
    const a = await agent(s, 'a');
    const b = await agent(s, 'b');
    const [f, g] = await addFunctions(a, ['f', 'g']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    await b.call('lock.acquire', { functions: [g], mode: 'write' });
    const hers = { ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'x' } }], key: '1' };
    const his = { ops: [{ op: 'addNode', function: g, node: { id: 2, op: 'y' } }], key: '1' };
    const ra = await a.call('edit.apply', hers);
    const rb = await b.call('edit.apply', his);
    expect(rb.revision).toBe(ra.revision + 1);
    expect(rb.functions.map((x: { id: number }) => x.id)).toEqual([g]);
    expect((await b.call('function.get', { function: g })).function.nodes.map((n: { id: number }) => n.id)).toEqual([
      2,
    ]);
    expect(await a.call('edit.apply', hers)).toEqual(ra);
    expect(await b.call('edit.apply', his)).toEqual(rb);
  });
});
