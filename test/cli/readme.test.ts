import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useSdk } from '../helpers/sdk.ts';
import { lockstep, ROOT, runNode } from '../helpers/cli.ts';

/** The README's first ```ts block under "## Client SDK", exactly as a reader copies it. */
async function readmeSample(): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Client SDK\n'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (code === undefined) throw new Error('README.md has no ts block under "## Client SDK"');
  return code;
}

describe("the README's SDK sample", { timeout: 60_000 }, () => {
  const t = useSdk();
  let dir = '';
  let file = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lockstep-readme-'));
    // .mts: outside the package, a .ts file would be CommonJS, where top-level await fails.
    file = join(dir, 'sample.mts');
    // The only change: the package name resolves to this checkout's client.
    const client = pathToFileURL(join(ROOT, 'src/client/index.ts')).href;
    await writeFile(file, (await readmeSample()).replace("from 'lockstep/client'", `from '${client}'`));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const run = (url: string) => runNode(['--import', 'tsx', file], { LOCKSTEP_URL: url });

  it('runs as written on a fresh server, again on its own result, and after the demo', async () => {
    const s = await t.server();
    const fresh = await run(s.url);
    expect(fresh).toMatchObject({ code: 0, stderr: '' });
    expect(fresh.stdout).toBe('committed revision 2\n');
    expect((await run(s.url)).stdout).toBe('committed revision 3\n');

    const demo = await lockstep(['demo', '--url', s.url, '--seconds', '1', '--agents', '2', '--quiet']);
    expect(demo.code).toBe(0);
    const after = await run(s.url);
    expect(after).toMatchObject({ code: 0, stderr: '' });
    expect(after.stdout).toMatch(/^committed revision \d+\n$/);

    const c = await t.client(s, 'checker', { role: 'observer' });
    const { functions } = await c.program.get();
    const mine = functions.filter((f) => f.name === 'tokenize' || f.name === 'render');
    expect(mine.map((f) => [f.name, f.version, f.lock])).toEqual([
      ['tokenize', 4, null],
      ['render', 4, null],
    ]);
  });
});
