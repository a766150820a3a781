import { describe, expect, it } from 'vitest';
import type { PathContentRecord } from '../../src/service/index.ts';
import { alice, bob, memoryService } from '../helpers/service.ts';

// What lock.release `contents` records per program and path (docs/protocol.md), on both stores.

const A = 'a'.repeat(40);

describe('recorded path contents', () => {
  it('keep a deleted path as a null blob, replaced by the next record either way', async () => {
    const svc = await memoryService();
    const by = (who: typeof alice, at: number) => ({ sessionId: who.sessionId, sessionName: who.name, at });
    const written = { path: 'src/x.ts', blob: A, commit: 'c'.repeat(64), ...by(alice, 1) };
    await svc.recordContents('main', [written]);
    const deleted: PathContentRecord = { path: 'src/x.ts', blob: null, commit: 'd'.repeat(40), ...by(bob, 2) };
    const never: PathContentRecord = { path: 'src/never.ts', blob: null, ...by(bob, 2) };
    await svc.recordContents('main', [deleted, never]);
    expect(await svc.contents('main', ['src/x.ts', 'src/never.ts'])).toEqual(
      new Map([
        ['src/x.ts', deleted],
        ['src/never.ts', never],
      ]),
    );
    const again = { path: 'src/x.ts', blob: A, ...by(alice, 3) };
    await svc.recordContents('main', [again]);
    expect((await svc.contents('main', ['src/x.ts'])).get('src/x.ts')).toEqual(again);
  });
});
