import { describe, expect, inject, it } from 'vitest';
import { freshDatabase } from '../helpers/postgres.ts';
import { addFunctions } from '../helpers/server.ts';
import { useNodes } from './nodes.ts';

// Edit keys belong to the session that sent them (docs/protocol.md, edit.apply), on a new leader
// too: the key is stored with the revision and its session, and looked up for that session only.

const { node, open, resumed } = useNodes();

const addNode = (fn: number, id: number) => ({ ops: [{ op: 'addNode', function: fn, node: { id, op: 'x' } }] });

describe('edit keys across a failover', () => {
  it("answer a resumed session's retry with its first result, and never another session's edit", async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const first = await node(db);
    const a = await open(first.url, 'a');
    const b = await open(first.url, 'b');
    const [f, g] = await addFunctions(a.client, ['f', 'g'] as const);
    await a.client.call('lock.acquire', { functions: [f], mode: 'write' });
    await b.client.call('lock.acquire', { functions: [g], mode: 'write' });
    const hers = await a.client.call('edit.apply', { ...addNode(f, 1), key: 'same' });
    const his = await b.client.call('edit.apply', { ...addNode(g, 2), key: 'same' });
    expect(his.revision).toBe(hers.revision + 1);
    await first.kill();

    const second = await node(db);
    const ra = await resumed(second.url, a);
    const rb = await resumed(second.url, b);
    expect(await ra.client.call('edit.apply', { ...addNode(f, 1), key: 'same' })).toEqual(hers);
    expect(await rb.client.call('edit.apply', { ...addNode(g, 2), key: 'same' })).toEqual(his);
    // A session of the new leader with the same key gets no one's result: its edit is checked.
    const c = await open(second.url, 'c');
    expect((await c.client.fail('edit.apply', { ...addNode(f, 3), key: 'same' })).data?.type).toBe('LOCK_REQUIRED');
  }, 60_000);
});
