import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/concurrency/index.ts';
import { ProgramService } from '../../src/service/index.ts';
import type { ProgramStore } from '../../src/service/store.ts';
import { chain, edit, memoryService } from '../helpers/service.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-commit-order-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the asynchronous store boundary', () => {
  // One server owns a SQLite file (an exclusive lock), so no second connection can sabotage it:
  // the store's own commit is made to fail instead.
  const storeOf = (svc: ProgramService): ProgramStore => (svc as any).store;

  it('changes nothing in memory when the store refuses the commit', async () => {
    const svc = await ProgramService.open({ path: join(dir, 'refusing.db'), clock: systemClock });
    const id = await chain(svc);
    const before = svc.getProgram('main');
    vi.spyOn(storeOf(svc), 'commit').mockRejectedValueOnce(new Error('refused'));
    await expect(edit(svc, [{ op: 'updateNode', function: id, node: { id: 1, attrs: { value: 9 } } }])).rejects.toThrow(
      /refused/,
    );
    expect(svc.getProgram('main')).toEqual(before);
    const next = await edit(svc, [{ op: 'updateNode', function: id, node: { id: 1, attrs: { value: 9 } } }]);
    expect(next.revision).toBe(before.revision + 1);
    await svc.close();
  });

  it('reloads a program whose last commit failed before the next work on it runs', async () => {
    const path = join(dir, 'reloaded.db');
    const svc = await ProgramService.open({ path, clock: systemClock });
    const id = await chain(svc);
    const before = svc.getProgram('main');
    const change = (value: number) => [{ op: 'updateNode', function: id, node: { id: 1, attrs: { value } } }];
    // What a failed commit may hide: it landed, and only its answer was lost.
    const store = storeOf(svc);
    const commit = store.commit.bind(store);
    vi.spyOn(store, 'commit').mockImplementationOnce(async (c) => {
      await commit(c);
      throw new Error('connection lost');
    });
    await expect(edit(svc, change(9))).rejects.toThrow(/connection lost/);
    const reloaded = await svc.inOrder('main', () => svc.getProgram('main'));
    expect(reloaded.revision).toBe(before.revision + 1);
    expect(svc.getFunction('main', id).function.nodes.find((n) => n.id === 1)?.attrs).toEqual({ value: 9 });
    expect((await edit(svc, change(11))).revision).toBe(before.revision + 2);
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
