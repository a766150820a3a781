import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addFunctions, useServers } from '../helpers/server.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-edit-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('idempotency keys on edits (docs/cluster.md, rule 6)', () => {
  const { server, agent } = useServers();

  it('answers a retried edit, undo or restore with its first result, also after a restart', async () => {
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
    const restored = await a.call('checkpoint.restore', { name: 'cp', key: 'k-restore' });
    await s.stop('restart');

    s = await server({ db });
    a = await agent(s, 'a again');
    // No lock held now: the retry is answered before any check, as the first call was.
    expect(await a.call('edit.apply', { ops, key: 'k-edit' })).toEqual(first);
    expect(await a.call('checkpoint.restore', { name: 'cp', key: 'k-restore' })).toEqual(restored);
    const history = await a.call('history.list', {});
    expect(history.revisions.map((r: { kind: string }) => r.kind)).toEqual(['edit', 'edit', 'undo', 'restore']);
  });
});
