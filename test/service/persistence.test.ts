import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { FENCE_BLOCK, ProgramService } from '../../src/service/index.ts';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/service/migrations.ts';
import { alice, chain, edit, expectCurrentSchema } from '../helpers/service.ts';
import { systemClock } from '../../src/concurrency/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-persist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function reopen(path: string, svc: ProgramService): Promise<ProgramService> {
  await svc.close();
  return ProgramService.open({ path, clock: systemClock });
}

describe('a file store', () => {
  it('creates its directory, uses WAL and records its schema version', async () => {
    const path = join(dir, 'deep', 'er', 'lockstep.db');
    const svc = await ProgramService.open({ path, clock: systemClock });
    expect(svc.listPrograms()).toEqual([{ name: 'main', revision: 0, functions: 0 }]);
    await svc.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(6);
    db.close();
  });

  it('finds everything again after a reopen', async () => {
    const path = join(dir, 'reopen.db');
    let svc = await ProgramService.open({ path, clock: systemClock });
    await chain(svc, 'f');
    await chain(svc, 'g');
    const oldHash = svc.getFunction('main', 1).hash;
    await edit(svc, [{ op: 'addNode', function: 1, node: { id: 9, op: 'x', attrs: { s: 'ünï 😀' } } }]);
    await edit(svc, [{ op: 'removeFunction', function: 2 }]);
    await svc.createCheckpoint('main', 'cp', alice);
    await svc.applyEdit('main', await svc.undoOps('main', 3), { ...alice, kind: 'undo', undoes: 3 });
    await svc.createProgram('aux');
    await chain(svc, 'h', 'aux');
    await svc.createProgram('gone');
    await svc.deleteProgram('gone');

    const programs = svc.listPrograms();
    const main = svc.getProgram('main');
    const f = svc.getFunction('main', 1);
    const history = await svc.history('main');
    const checkpoints = await svc.listCheckpoints('main');
    const conflicts = await svc.checkExpected('main', { '1': oldHash });

    svc = await reopen(path, svc);
    expect(svc.listPrograms()).toEqual(programs);
    expect(svc.hasProgram('gone')).toBe(false);
    expect(svc.getProgram('main')).toEqual(main);
    expect(svc.getFunction('main', 1)).toEqual(f);
    expect(await svc.history('main')).toEqual(history);
    expect(await svc.listCheckpoints('main')).toEqual(checkpoints);
    expect(await svc.checkExpected('main', { '1': oldHash })).toEqual(conflicts);
    expect(conflicts[0]?.diff).not.toBeNull();

    // Ids are never reused across restarts, removed ones come back under their own id.
    expect((await edit(svc, [{ op: 'addFunction', name: 'k' }])).created).toEqual([{ name: 'k', id: 3 }]);
    await svc.applyEdit('main', await svc.undoOps('main', 4), { ...alice, kind: 'undo', undoes: 4 });
    expect(svc.getFunction('main', 2).function.name).toBe('g');
    await svc.applyEdit('main', await svc.restoreOps('main', 'cp'), { ...alice, kind: 'restore', checkpoint: 'cp' });
    expect(svc.hasFunction('main', 2)).toBe(false);
    expect(svc.hasFunction('main', 3)).toBe(false);

    const after = svc.getProgram('main');
    svc = await reopen(path, svc);
    expect(svc.getProgram('main')).toEqual(after);
    await svc.close();
  });

  it('never hands out a fence token twice, not across reopens, not after a program is deleted', async () => {
    const path = join(dir, 'fences.db');
    let svc = await ProgramService.open({ path, clock: systemClock });
    const seen: number[] = [];
    for (let i = 0; i < FENCE_BLOCK + 5; i++) seen.push(svc.fences().next('main'));
    seen.push(svc.fences().next('aux'));
    svc = await reopen(path, svc);
    seen.push(svc.fences().next('main'));
    svc = await reopen(path, svc);
    seen.push(svc.fences().next('main'), svc.fences().next('main'));
    await svc.deleteProgram('main');
    await svc.createProgram('main');
    seen.push(svc.fences().next('main'));
    svc = await reopen(path, svc);
    seen.push(svc.fences().next('main'));
    await svc.close();
    const main = seen.filter((_, i) => i !== FENCE_BLOCK + 5);
    for (let i = 1; i < main.length; i++) expect(main[i]).toBeGreaterThan(main[i - 1] as number);
    expect(seen[FENCE_BLOCK + 5]).toBe(1);
  });

  it('keeps nothing with :memory:', async () => {
    const svc = await ProgramService.open({ path: ':memory:', clock: systemClock });
    await chain(svc);
    await svc.close();
    expect((await ProgramService.open({ path: ':memory:', clock: systemClock })).getProgram('main').functions).toEqual(
      [],
    );
  });
});

describe('a store of an older schema', () => {
  it('is migrated on open, keeping its content, and takes what the new schema adds', async () => {
    const path = join(dir, 'v1.db');
    const old = new Database(path);
    const [v1] = MIGRATIONS;
    v1?.up(old, 1);
    old.pragma('user_version = 1');
    old.close();
    await expectCurrentSchema(path);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
  });

  it('keeps the path contents recorded before a deleted path could be (schema 5)', async () => {
    const path = join(dir, 'v5.db');
    const old = new Database(path);
    for (const m of MIGRATIONS.filter((m) => m.version <= 5)) m.up(old, 1);
    old.pragma('user_version = 5');
    // Migration 1 created the program main.
    old.exec(
      `INSERT INTO path_contents VALUES ('main', 'src/a.ts', '${'a'.repeat(40)}', NULL, '${alice.sessionId}', 'alice', 2)`,
    );
    old.close();
    const svc = await ProgramService.open({ path, clock: systemClock });
    expect(await svc.contents('main', ['src/a.ts'])).toEqual(
      new Map([
        [
          'src/a.ts',
          { path: 'src/a.ts', blob: 'a'.repeat(40), sessionId: alice.sessionId, sessionName: 'alice', at: 2 },
        ],
      ]),
    );
    await svc.close();
  });
});
