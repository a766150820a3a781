import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';
import { addFns, useSdk } from '../helpers/sdk.ts';

const AGENT = 'examples/python/agent.py';

/** Debian's python3 has python3-websockets; the python3 first on PATH (pyenv here) may not. */
function pythonWithWebsockets(): string {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(candidate, ['-c', 'import websockets'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // Not there, or without websockets: try the next.
    }
  }
  throw new Error(
    'no python3 that can import websockets (tried /usr/bin/python3, python3): apt install python3-websockets',
  );
}

describe('examples/python/agent.py', () => {
  const t = useSdk();

  it('waits its turn with positions, meets a conflict from the holder, redoes its edit and releases', async () => {
    const python = pythonWithWebsockets();
    const s = await t.server();
    const holder = await t.client(s, 'holder');
    const [f] = (await addFns(holder, ['f'])) as [number];
    const lock = await holder.acquire({ functions: [f], mode: 'write' });

    const agent = spawn(python, [AGENT, s.url], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    agent.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => agent.once('close', resolve));
    const lines: string[] = [];
    for await (const line of createInterface({ input: agent.stdout })) {
      lines.push(line);
      if (line === 'queued: position 1') {
        // The agent read f before queueing: this edit makes its read stale.
        await holder.edit.apply({
          ops: [{ op: 'addNode', function: f, node: { id: 1, op: 'const' } }],
          fences: lock.fences,
        });
        await lock.release();
      }
    }
    expect(await exited, stderr).toBe(0);
    expect(lines.map((l) => l.split(':')[0])).toEqual([
      'hello',
      'read',
      'queued',
      'locked',
      'conflict',
      'edited',
      'released',
    ]);
    expect(lines).toContain(`conflict: function ${f} changed since our read: nodes added 1, removed 0, modified 0`);
    expect(lines).toContain('edited: f is now version 3');
    const after = await holder.function.get({ function: f });
    expect(after.function.nodes.map((n) => n.id)).toEqual([1, 2]);
    expect((await holder.lock.status({})).resources).toEqual([]);
  });
});
