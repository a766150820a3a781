import { describe, expect, it } from 'vitest';
import { useSdk } from '../helpers/sdk.ts';
import { runNode } from '../helpers/cli.ts';

describe('examples/minimal-agent.ts', () => {
  const t = useSdk();

  it('locks two functions, edits them with hashes and fences, and releases', async () => {
    const s = await t.server();
    const ran = await runNode(['--import', 'tsx', 'examples/minimal-agent.ts'], { LOCKSTEP_URL: s.url });
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(/committed revision 2: tokenize v2, render v2/);
    const c = await t.client(s, 'checker');
    const { functions } = await c.program.get();
    expect(functions.map((f) => [f.name, f.version, f.lock])).toEqual([
      ['tokenize', 2, null],
      ['render', 2, null],
    ]);
    const { revisions } = await c.history.list({});
    expect(revisions.map((r) => r.by.name)).toEqual(['minimal-agent', 'minimal-agent']);
  });
});
