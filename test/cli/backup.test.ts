import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LockstepClient } from '../../src/client/index.ts';
import { until } from '../helpers/until.ts';
import { addFns, useSdk } from '../helpers/sdk.ts';
import { collect, lineMatching, spawnLockstep } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-backup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('an online backup of a SQLite store', { timeout: 60_000 }, () => {
  const t = useSdk();

  it('SIGUSR2 writes a consistent copy beside the store while the server serves; a server on the copy has the program', async () => {
    const db = join(dir, 'lockstep.db');
    const child = spawnLockstep(['serve', '--port', '0', '--db', db, '--log', 'json']);
    const done = collect(child);
    const [, url] = await lineMatching(child, /^lockstep listening on (ws:\/\/\S+)$/);
    const c = await LockstepClient.connect({ url: url as string, name: 'author', reconnect: false });
    const [f] = (await addFns(c, ['parse'])) as [number];
    const lock = await c.acquire({ functions: [f], mode: 'write' });
    await c.edit.apply({ ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }], fences: lock.fences });
    const { hash } = await c.function.get({ function: f });

    child.kill('SIGUSR2');
    const backup = `${db}.backup`;
    await until('the backup is written', 20_000, async () => (existsSync(backup) ? true : undefined));
    // The server serves on, the lock still held.
    await c.edit.apply({ ops: [{ op: 'addNode', function: f, node: { id: 2, op: 'const' } }], fences: lock.fences });
    await c.close();
    child.kill('SIGTERM');
    const ran = await done;
    expect(ran.code).toBe(0);
    expect(ran.stderr).toMatch(/"msg":"backup written"/);
    expect(existsSync(`${backup}.partial`)).toBe(false);

    // The copy is a store of its own, as it was at the backup.
    const s = await t.server({ db: backup });
    const reader = await t.client(s, 'reader', { role: 'observer' });
    const restored = await reader.function.get({ function: f });
    expect(restored.hash).toBe(hash);
    expect(restored.function.nodes.map((n) => n.id)).toEqual([1]);
    expect((await reader.program.get()).revision).toBe(2);
  });
});
