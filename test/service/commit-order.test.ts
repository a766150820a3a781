import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/concurrency/index.ts';
import { ProgramService } from '../../src/service/index.ts';
import { chain, edit, memoryService } from '../fixtures/service.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-commit-order-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the asynchronous store boundary', () => {
  it('changes nothing in memory when the store refuses the commit', async () => {
    const path = join(dir, 'refusing.db');
    const svc = await ProgramService.open({ path, clock: systemClock });
    const id = await chain(svc);
    const before = svc.getProgram('main');
    const saboteur = new Database(path);
    saboteur.exec("CREATE TRIGGER refuse BEFORE INSERT ON revisions BEGIN SELECT RAISE(ABORT, 'refused'); END");
    await expect(edit(svc, [{ op: 'updateNode', function: id, node: { id: 1, attrs: { value: 9 } } }])).rejects.toThrow(
      /refused/,
    );
    expect(svc.getProgram('main')).toEqual(before);
    saboteur.exec('DROP TRIGGER refuse');
    saboteur.close();
    const next = await edit(svc, [{ op: 'updateNode', function: id, node: { id: 1, attrs: { value: 9 } } }]);
    expect(next.revision).toBe(before.revision + 1);
    await svc.close();
  });

  it('reloads a program whose last commit failed before the next work on it runs', async () => {
    const path = join(dir, 'reloaded.db');
    const svc = await ProgramService.open({ path, clock: systemClock });
    const id = await chain(svc);
    const saboteur = new Database(path);
    saboteur.exec("CREATE TRIGGER refuse BEFORE INSERT ON revisions BEGIN SELECT RAISE(ABORT, 'refused'); END");
    const change = (value: number) => [{ op: 'updateNode', function: id, node: { id: 1, attrs: { value } } }];
    await expect(edit(svc, change(9))).rejects.toThrow(/refused/);
    saboteur.exec('DROP TRIGGER refuse');
    saboteur.close();
    // What a failed commit may hide: the store moved on without this process knowing.
    const other = await ProgramService.open({ path, clock: systemClock });
    await edit(other, change(10));
    const moved = other.getProgram('main');
    await other.close();
    expect(await svc.inOrder('main', () => svc.getProgram('main'))).toEqual(moved);
    expect((await edit(svc, change(11))).revision).toBe(moved.revision + 1);
    await svc.close();
  });

  it('runs work on one program in call order, whatever each awaits', async () => {
    const svc = await memoryService();
    const order: string[] = [];
    let release = () => {};
    const slow = svc.inOrder('main', async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      order.push('slow');
    });
    const failing = svc.inOrder('main', () => {
      order.push('failing');
      throw new Error('no');
    });
    const fast = svc.inOrder('main', () => order.push('fast'));
    const other = svc.inOrder('aux', () => order.push('other program'));
    await other;
    expect(order).toEqual(['other program']);
    release();
    await slow;
    await expect(failing).rejects.toThrow('no');
    await fast;
    expect(order).toEqual(['other program', 'slow', 'failing', 'fast']);
    await svc.close();
  });
});
