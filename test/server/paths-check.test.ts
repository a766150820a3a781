import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { freshLocation } from '../helpers/service.ts';
import { useServers } from '../helpers/server.ts';

// lock.release `contents` and paths.check (docs/protocol.md), on both stores: what a git guard
// asks before a commit, for the committing agent's session, named by its id.

const B1 = 'a'.repeat(40);
const B2 = 'b'.repeat(40);
const C1 = 'c'.repeat(64);

describe('paths.check and recorded contents', () => {
  const t = useServers();

  it('answers held only for the session holding a covering write lock now, and names the others', async () => {
    const s = await t.server();
    const [a, b, guard] = [await t.agent(s, 'a'), await t.agent(s, 'twin'), await t.agent(s, 'g', 'observer')];
    // A second session with the same name as b: the check goes by id, never by name.
    const twin = await t.agent(s, 'twin');
    await b.call('lock.acquire', { program: 'repo', paths: ['src'], mode: 'write', description: 'split the parser' });
    await a.call('lock.acquire', { program: 'repo', paths: ['src/x'], mode: 'write', wait: true });
    const check = (session: string) =>
      guard.call('paths.check', {
        program: 'repo',
        session,
        changes: [
          { path: 'src/a.ts', base: null },
          { path: 'docs/r.md', base: null },
        ],
      });
    const mine = await check(b.sessionId);
    expect(mine.changes[0]).toEqual({
      path: 'src/a.ts',
      held: true,
      fence: expect.any(Number),
      holders: [],
      queueLength: 0,
    });
    expect(mine.changes[1]).toEqual({ path: 'docs/r.md', held: false, holders: [], queueLength: 0 });
    const theirs = await check(twin.sessionId);
    expect(theirs.changes[0]).toEqual({
      path: 'src/a.ts',
      held: false,
      holders: [
        {
          sessionId: b.sessionId,
          name: 'twin',
          mode: 'write',
          path: 'src',
          description: 'split the parser',
          expiresAt: expect.any(String),
        },
      ],
      queueLength: 0,
    });
    // A read lock does not count; a queued ticket counts in queueLength.
    await a.call('lock.acquire', { program: 'repo', paths: ['lib'], mode: 'read' });
    const read = await guard.call('paths.check', {
      program: 'repo',
      session: a.sessionId,
      changes: [
        { path: 'lib/x', base: null },
        { path: 'src/x', base: null },
      ],
    });
    expect(read.changes.map((c: { held: boolean }) => c.held)).toEqual([false, false]);
    expect(read.changes[1].queueLength).toBe(1);
    // Unknown program: nothing held, nothing recorded.
    const none = await guard.call('paths.check', {
      program: 'nope',
      session: a.sessionId,
      changes: [{ path: 'x', base: B1 }],
    });
    expect(none.changes).toEqual([{ path: 'x', held: false, holders: [], queueLength: 0 }]);
  });

  it('refuses malformed params with -32602', async () => {
    const s = await t.server();
    const a = await t.agent(s, 'a');
    const bad = [
      { program: 'repo', session: 'not-a-uuid', changes: [] },
      { program: 'repo', session: a.sessionId, changes: [{ path: 'a//b', base: null }] },
      { program: 'repo', session: a.sessionId, changes: [{ path: 'a', base: 'ABC' }] },
    ];
    for (const params of bad) expect((await a.fail('paths.check', params)).code).toBe(-32602);
    await a.call('lock.acquire', { program: 'repo', paths: ['src'], mode: 'write' });
    const err = await a.fail('lock.release', {
      program: 'repo',
      paths: ['src'],
      contents: [{ path: 'src/a', blob: B1.toUpperCase() }],
    });
    expect(err.code).toBe(-32602);
    expect(err.message).toMatch(/contents\.0\.blob: a git object id is 40 or 64 lowercase hex characters/);
    // A deleted path is a null blob, not one left out or empty.
    for (const blob of [undefined, '']) {
      const missing = await a.fail('lock.release', {
        program: 'repo',
        paths: ['src'],
        contents: [{ path: 'src/a', blob }],
      });
      expect(missing.code).toBe(-32602);
    }
  });

  it('records a deleted path: a change based on a copy that still has it is stale, a new file is not', async () => {
    const s = await t.server();
    const [a, guard] = [await t.agent(s, 'a'), await t.agent(s, 'g', 'observer')];
    await a.call('lock.acquire', { program: 'repo', paths: ['src'], mode: 'write' });
    await a.call('lock.release', {
      program: 'repo',
      paths: ['src'],
      contents: [{ path: 'src/x.ts', blob: null, commit: C1 }],
    });
    const r = await guard.call('paths.check', {
      program: 'repo',
      session: a.sessionId,
      changes: [
        { path: 'src/x.ts', base: B1 },
        { path: 'src/x.ts', base: null },
      ],
    });
    expect(r.changes.map((c: { recorded?: unknown }) => c.recorded)).toEqual([
      { blob: null, commit: C1, sessionId: a.sessionId, name: 'a', at: expect.any(String) },
      undefined,
    ]);
  });

  it('records contents only under a write lock of the releasing session, and keeps them across a restart', async () => {
    const db = await freshLocation(mkdtempSync(`${tmpdir()}/lockstep-paths-`), 'paths.db');
    const first = await t.server({ db });
    const [a, b] = [await t.agent(first, 'a'), await t.agent(first, 'b')];
    await a.call('lock.acquire', { program: 'repo', paths: ['src'], mode: 'write' });
    await b.call('lock.acquire', { program: 'repo', paths: ['docs'], mode: 'read' });
    // Not under a write lock of the session: refused, nothing released or recorded.
    const refused = await b.fail('lock.release', {
      program: 'repo',
      paths: ['docs'],
      contents: [{ path: 'docs/r.md', blob: B1 }],
    });
    expect(refused.data).toMatchObject({ type: 'NOT_HELD', resources: [{ program: 'repo', path: 'docs/r.md' }] });
    expect((await b.call('lock.release', { program: 'repo', paths: ['docs'] })).released).toHaveLength(1);
    const released = await a.call('lock.release', {
      program: 'repo',
      paths: ['src'],
      contents: [
        { path: 'src/a.ts', blob: B2, commit: C1 },
        { path: 'src/new.ts', blob: B1 },
      ],
    });
    expect(released.released).toEqual([{ program: 'repo', path: 'src' }]);
    await first.stop('restart');

    const second = await t.server({ db });
    const guard = await t.agent(second, 'g', 'observer');
    const r = await guard.call('paths.check', {
      program: 'repo',
      session: a.sessionId,
      changes: [
        { path: 'src/a.ts', base: B1 },
        { path: 'src/a.ts', base: B2 },
        { path: 'src/new.ts', base: null },
        { path: 'docs/r.md', base: null },
      ],
    });
    expect(r.changes.map((c: { recorded?: unknown }) => c.recorded)).toEqual([
      { blob: B2, commit: C1, sessionId: a.sessionId, name: 'a', at: expect.any(String) },
      undefined,
      { blob: B1, sessionId: a.sessionId, name: 'a', at: expect.any(String) },
      undefined,
    ]);
  });
});
