import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';

const run = promisify(execFile);
/** Packing builds (tsc), installing resolves the dependencies from npm's cache or registry. */
const INSTALL_TIMEOUT_MS = 240_000;

// A plain-node ESM script in a project that installed the tarball: the server and the client
// from the package's two entry points, the dashboard served from the package, one edit under a
// lock with hash and fence, released.
const SCRIPT = `
import { start } from 'lockstep';
import { LockstepClient } from 'lockstep/client';

const server = await start({ port: 0, db: ':memory:', logLevel: 'silent' });
const client = await LockstepClient.connect({ url: server.url, name: 'packaged' });
const added = await client.withLocks({ structure: true, mode: 'write' }, (lock) =>
  client.edit.apply({ ops: [{ op: 'addFunction', name: 'f' }], fences: lock.fences }),
);
const id = added.created[0].id;
const lock = await client.acquire({ functions: [id], mode: 'write' });
const { hash } = await client.function.get({ function: id });
const edit = await client.edit.apply({
  ops: [{ op: 'addNode', function: id, node: { id: 1, op: 'const' } }],
  expectedHashes: { [id]: hash },
  fences: lock.fences,
});
const released = await lock.release();
const dashboard = await fetch(server.dashboardUrl);
const page = await dashboard.text();
console.log(JSON.stringify({
  version: edit.functions[0].version,
  released: released.length,
  held: client.held().length,
  dashboard: dashboard.status,
  html: page.includes('<html'),
  serverVersion: client.hello.server.version,
}));
await client.close();
await server.stop();
`;

/** The README's ```js block under "## Embedding the server", exactly as a reader copies it. */
function embeddingSample(readme: string): string {
  const section = readme.slice(readme.indexOf('\n## Embedding the server\n'));
  const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  if (code === undefined) throw new Error('README.md has no js block under "## Embedding the server"');
  return code;
}

/** Every relative link of a markdown file (anchors dropped), as a path inside the package. */
function relativeLinks(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
    .map((m) => m[1] as string)
    .filter((target) => !/^[a-z]+:/.test(target))
    .map((target) => join(dirname(file), target));
}

describe('the packed package on plain node', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-pack-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'installs from npm pack and connects, locks, edits and releases; npx lockstep --help and mcp --help run; it carries the license and what the README, docs and --help link; the README embedding sample runs',
    async () => {
      await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT });
      // Packing built the clone's dist/: its command runs as it is (npx lockstep in the clone).
      expect(statSync(join(ROOT, 'dist', 'cli.js')).mode & 0o111).toBe(0o111);
      const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
      expect(tarball).toBeDefined();
      const project = join(dir, 'project');
      mkdirSync(project);
      writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      // Install scripts off: better-sqlite3 would compile its addon again (minutes on 2 cores);
      // the addon this checkout built, for this same Node, is copied in instead.
      await run(
        'npm',
        ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', join(dir, tarball as string)],
        { cwd: project },
      );
      cpSync(
        join(ROOT, 'node_modules', 'better-sqlite3', 'build'),
        join(project, 'node_modules', 'better-sqlite3', 'build'),
        {
          recursive: true,
        },
      );
      expect(existsSync(join(project, 'node_modules', 'tsx'))).toBe(false);
      expect(existsSync(join(project, 'node_modules', 'lockstep', 'src'))).toBe(false);
      writeFileSync(join(project, 'agent.mjs'), SCRIPT);

      const { stdout } = await run(process.execPath, ['agent.mjs'], { cwd: project });
      expect(JSON.parse(stdout)).toEqual({
        version: 2,
        released: 1,
        held: 0,
        dashboard: 200,
        html: true,
        serverVersion: expect.any(String),
      });
      const help = await run('npx', ['lockstep', '--help'], { cwd: project });
      expect(help.stdout).toContain('serve');
      const mcpHelp = await run('npx', ['lockstep', 'mcp', '--help'], { cwd: project });
      expect(mcpHelp.stdout).toContain('--idle-release-ms');

      // It carries what it links: the license, and every file the README, the docs and --help name.
      const pkg = join(project, 'node_modules', 'lockstep');
      expect(readFileSync(join(pkg, 'LICENSE'), 'utf8')).toMatch(
        /^MIT License\n\nCopyright \(c\) \d{4} Lockstep contributors\n/,
      );
      const markdown = ['README.md', 'CHANGELOG.md', ...readdirSync(join(pkg, 'docs')).map((f) => `docs/${f}`)]
        .filter((f) => f.endsWith('.md'))
        .map((f) => join(pkg, f));
      const links = markdown.flatMap(relativeLinks);
      // --help names the docs by where they are installed.
      const helpNames = [...`${help.stdout}${mcpHelp.stdout}`.matchAll(/(\/\S+\/docs\/(?:[\w-]+\.md)?)/g)].map(
        (m) => m[1] as string,
      );
      expect(helpNames).toEqual([`${join(pkg, 'docs')}/`, join(pkg, 'docs', 'mcp.md')]);
      expect(links.length).toBeGreaterThan(10);
      expect([...links, ...helpNames].filter((target) => !existsSync(target))).toEqual([]);

      // The README's embedding sample runs as written against the installed package.
      writeFileSync(join(project, 'embed.mjs'), embeddingSample(readFileSync(join(pkg, 'README.md'), 'utf8')));
      const embedded = await run(process.execPath, ['embed.mjs'], { cwd: project });
      expect(embedded.stdout).toMatch(
        /^serving ws:\/\/127\.0\.0\.1:\d+\/ws, dashboard at http:\/\/127\.0\.0\.1:\d+\/\nprograms: main\n$/,
      );
    },
    INSTALL_TIMEOUT_MS,
  );
});
