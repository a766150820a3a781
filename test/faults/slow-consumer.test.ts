import { describe, expect, it } from 'vitest';
import { start } from '../../src/server.ts';
import { EventObserver, FaultClient } from '../helpers/fault-client.ts';

// An agent that stops reading is dropped as a slow consumer when a reply finds its socket over
// maxBufferedBytes. If that reply is its own edit's, the edit is already committed under its
// lock; the sequenced stream must still say so before it says the lock went to someone else,
// or every observer replaying the stream sees an edit applied without the lock.

/** Functions of one ~900 KB node each: one history.diff over them is a ~16 MB reply. */
const BIG_FUNCTIONS = 18;

describe('slow consumer dropped by its own edit reply', () => {
  it('puts the commit on the stream before the release of the locks it was made under', async () => {
    const server = await start({ port: 0, db: ':memory:', logLevel: 'silent', maxBufferedBytes: 65_536 });
    const observer = new EventObserver(server.url, ['agents', 'locks', 'edits']);
    try {
      await observer.start();
      const setup = await FaultClient.open(server.url, 'setup');
      await setup.call('lock.acquire', { structure: true, mode: 'write' });
      const names = ['f', ...Array.from({ length: BIG_FUNCTIONS }, (_, i) => `big${i}`)];
      const made = await setup.call('edit.apply', { ops: names.map((name) => ({ op: 'addFunction', name })) });
      if (made.kind !== 'ok') throw new Error(`setup failed: ${JSON.stringify(made)}`);
      const [f, ...bigs] = made.result.created.map((c: { id: number }) => c.id) as [number, ...number[]];
      await setup.call('lock.acquire', { functions: bigs, mode: 'write' });
      let last = 0;
      for (const big of bigs) {
        const r = await setup.call('edit.apply', {
          ops: [{ op: 'addNode', function: big, node: { id: 1, op: 'const', attrs: { s: 'x'.repeat(900_000) } } }],
        });
        if (r.kind !== 'ok') throw new Error(`setup failed: ${JSON.stringify(r).slice(0, 200)}`);
        last = r.result.revision;
      }
      await setup.close();

      const a = await FaultClient.open(server.url, 'a');
      const b = await FaultClient.open(server.url, 'b');
      const granted = await a.call('lock.acquire', { functions: [f], mode: 'write' });
      if (granted.kind !== 'ok') throw new Error(`acquire failed: ${JSON.stringify(granted)}`);
      const fence: number = granted.result.grants[0].fence;
      const queued = await b.call('lock.acquire', { functions: [f], mode: 'write', wait: true });
      expect(queued.kind === 'ok' && queued.result.status).toBe('queued');
      const read = await a.call('function.get', { function: f });
      if (read.kind !== 'ok') throw new Error(`function.get failed: ${JSON.stringify(read)}`);

      // A stops reading; a huge reply fills its socket, then its edit's reply finds it full.
      a.pause();
      void a.call('history.diff', { from: made.result.revision, to: last });
      const edit = a.call('edit.apply', {
        ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }],
        expectedHashes: { [f]: read.result.hash },
        fences: { [f]: fence },
      });
      // The drop, if any, happens in the tick that commits, so it is over once the commit is seen.
      const committed = await observer.waitFor((e) => e.type === 'committed' && e.data.sessionId === a.sessionId);
      a.resume();
      expect((await edit).kind, 'precondition: a was dropped before its edit reply').toBe('unknown');
      const released = await observer.waitFor((e) => e.type === 'released' && e.data.sessionId === a.sessionId);
      const handedOver = await observer.waitFor((e) => e.type === 'granted' && e.data.sessionId === b.sessionId);
      const left = await observer.waitFor((e) => e.type === 'left' && e.data.sessionId === a.sessionId);
      await b.close();
      expect(released.data.reason).toBe('disconnect');

      const order = observer.events
        .filter((e) => e.seq >= Math.min(committed.seq, released.seq) && e.seq <= Math.max(committed.seq, left.seq))
        .map((e) => `${e.seq} ${e.type} ${e.data.name}`);
      expect(committed.seq, `stream: ${order.join(', ')}`).toBeLessThan(released.seq);
      expect(committed.seq, `stream: ${order.join(', ')}`).toBeLessThan(handedOver.seq);
    } finally {
      await observer.stop();
      await server.stop('test over');
    }
  }, 30_000);
});
