import { describe, expect, inject, it } from 'vitest';
import { WebSocket } from 'ws';
import type { WebSocketConstructor } from '../../src/client/index.ts';
import { addFns, useSdk } from '../helpers/sdk.ts';
import { sql, untilRows } from '../cluster/nodes.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { useDatabaseProxies } from '../helpers/database-proxy.ts';

// An edit whose COMMIT reached PostgreSQL but whose answer did not: the server's connection to the
// database breaks inside the commit, and it can only refuse the edit with STORE_UNAVAILABLE, which
// here does not mean "not applied". The SDK asks again with the edit's key after each wait the
// refusal names, and is answered with the first result: applied once, and the caller knows it.

/** A long lease: the held answers must not make the only node step down (a different fault). */
const TIMING = { leaseTtlMs: 30_000, leaseRenewMs: 1_000, leaseDriftMs: 500 };

const REVISION = "SELECT revision::int AS r FROM programs WHERE name = 'main'";

const databaseProxy = useDatabaseProxies();

/** `ws` sockets that keep the edit.apply requests the client sends. */
function recordingEdits() {
  const sent: Array<{ key?: string }> = [];
  class Recording extends WebSocket {
    constructor(url: string) {
      super(url);
      const send = this.send.bind(this);
      this.send = ((data: string) => {
        const frame = JSON.parse(data) as { method: string; params?: { key?: string; ops?: unknown[] } };
        if (frame.method === 'edit.apply') sent.push({ key: frame.params?.key });
        send(data);
      }) as typeof this.send;
    }
  }
  return { WebSocket: Recording as unknown as WebSocketConstructor, sent };
}

describe('an edit committed while the store connection broke', () => {
  const t = useSdk();

  it('is asked for again with its key after STORE_UNAVAILABLE, and answered with the first result', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    const proxy = await databaseProxy(db);
    const s = await t.server({ db: proxy.url, ...TIMING });
    const edits = recordingEdits();
    const a = await t.client(s, 'a', { WebSocket: edits.WebSocket });
    const [f] = (await addFns(a, ['f'])) as [number];
    const lock = await a.acquire({ functions: [f], mode: 'write' });
    const revisionOf = async () => (await sql(db, REVISION))[0].r as number;
    const before = await revisionOf();

    const held = proxy.holdRepliesAfterCommitOf('INSERT INTO revisions');
    const edit = a.edit.apply({
      ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }],
      fences: lock.fences,
    });
    await held;
    // The COMMIT went through; wait until it is visible, then break the connections it came on.
    await untilRows(db, REVISION, [], (rows) => rows[0].r > before);
    proxy.mode({ kind: 'pass' });

    const result = await edit;
    expect(result.revision).toBe(before + 1);
    // The setup's edit, then this one: refused at least once, and always asked with one key.
    const asked = edits.sent.slice(1);
    expect(asked.length).toBeGreaterThanOrEqual(2);
    expect(asked[0]!.key).toBeDefined();
    expect(new Set(asked.map((e) => e.key)).size).toBe(1);
    expect(await revisionOf()).toBe(before + 1);
    const body = (await a.function.get({ function: f })).function;
    expect(body.nodes.filter((n) => n.id === 1)).toHaveLength(1);
  }, 60_000);
});
