import { describe, expect, inject, it } from 'vitest';
import { freshDatabase } from '../helpers/postgres.ts';
import { useNodes } from './nodes.ts';

// Path locks through a failover (docs/protocol.md "Paths", docs/cluster.md failover rules): they
// are journaled before they are announced, held absent for their sessions on the new leader, and
// still conflict there by the hierarchy.

const { node, open, resumed } = useNodes();
const repo = (path: string) => ({ program: 'repo', path });

describe('path locks through a failover', () => {
  it('come back to their holders with their fences, and keep the hierarchy meanwhile', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const first = await node(db);
    const a = await open(first.url, 'a');
    const b = await open(first.url, 'b');
    const ga = await a.client.call('lock.acquire', {
      program: 'repo',
      paths: ['src/a.ts'],
      mode: 'write',
      ttlMs: 60_000,
    });
    const gb = await b.client.call('lock.acquire', { program: 'repo', paths: ['docs'], mode: 'read', ttlMs: 60_000 });
    expect([ga.status, gb.status]).toEqual(['granted', 'granted']);
    // Recorded content is in the shared store: the next leader names it.
    await b.client.call('lock.acquire', { program: 'repo', paths: ['lib'], mode: 'write' });
    await b.client.call('lock.release', {
      program: 'repo',
      paths: ['lib'],
      contents: [{ path: 'lib/x', blob: 'f'.repeat(40) }],
    });
    await first.kill();

    const second = await node(db);
    const t = await open(second.url, 't');
    // The program created by the first path lock is there, and a's lock below src holds src.
    const denied = await t.client.fail('lock.acquire', { program: 'repo', paths: ['src'], mode: 'read' });
    expect(denied.data?.type).toBe('LOCK_DENIED');
    expect((denied.data!.blockers as any)[0].holders[0]).toMatchObject({
      sessionId: a.sessionId,
      resource: repo('src/a.ts'),
    });
    const waiting = await t.client.call('lock.acquire', { program: 'repo', paths: ['src'], mode: 'write', wait: true });
    expect(waiting.status).toBe('queued');
    // A read on docs shares with b's restored read; a write below it does not.
    expect((await t.client.call('lock.acquire', { program: 'repo', paths: ['docs/x'], mode: 'read' })).status).toBe(
      'granted',
    );
    expect(
      (await t.client.fail('lock.acquire', { program: 'repo', paths: ['docs/y'], mode: 'write' })).data?.type,
    ).toBe('LOCK_DENIED');

    const check = await t.client.call('paths.check', {
      program: 'repo',
      session: t.sessionId,
      changes: [{ path: 'lib/x', base: null }],
    });
    expect(check.changes[0].recorded).toMatchObject({ blob: 'f'.repeat(40), sessionId: b.sessionId });

    const ra = await resumed(second.url, a);
    expect(ra.frame.result.restored).toEqual([
      expect.objectContaining({ resource: repo('src/a.ts'), mode: 'write', fence: ga.grants[0].fence }),
    ]);
    const rb = await resumed(second.url, b);
    expect(rb.frame.result.restored).toEqual([
      expect.objectContaining({ resource: repo('docs'), mode: 'read', fence: gb.grants[0].fence }),
    ]);
    await ra.client.call('lock.release', { program: 'repo', paths: ['src/a.ts'] });
    const granted = await t.client.notification('lock.granted', (p) => p.ticket === waiting.ticket);
    expect(granted.grants[0].fence).toBeGreaterThan(Math.max(ga.grants[0].fence, gb.grants[0].fence));
  }, 60_000);
});
