import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProgramFile } from '../../src/protocol/program-file.ts';
import { BIN, collect, lockstep, ROOT, type Ran } from '../helpers/cli.ts';
import { useSdk } from '../helpers/sdk.ts';

// lockstep export and import through the protocol, on the store of the vitest project (SQLite,
// and PostgreSQL in the postgres project): a program with a gap in its ids, signatures, nodes
// and edges goes to a fresh server and comes back with the same hashes, in one revision.

const dir = mkdtempSync(join(tmpdir(), 'lockstep-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * On PostgreSQL a test server is a cluster of one: a lease long enough that a loaded machine's
 * stalls never make it step down (4002) under the test's own calls. SQLite ignores it.
 */
const LONG_LEASE = { leaseTtlMs: 30_000, leaseRenewMs: 1_000, leaseDriftMs: 1_000 } as const;

const schema = JSON.parse(readFileSync(new URL('../../docs/program-file.schema.json', import.meta.url), 'utf8'));

/** What must survive a round trip: every function's content and hash, by name (ids may change). */
function contents(file: ProgramFile) {
  return Object.fromEntries(
    file.functions.map(({ id: _id, version: _version, ...rest }) => [rest.name, rest] as const),
  );
}

/** `lockstep import - ...` with `file` on its stdin. */
function importFromStdin(file: string, args: readonly string[]): Promise<Ran> {
  const input = openSync(file, 'r');
  try {
    const child = spawn(process.execPath, [BIN, 'import', '-', ...args], { cwd: ROOT, stdio: [input, 'pipe', 'pipe'] });
    return collect(child);
  } finally {
    closeSync(input);
  }
}

// Several CLI processes per test (each compiles through tsx): slow on a loaded machine.
describe('lockstep export and import', { timeout: 180_000 }, () => {
  const t = useSdk();

  it('a round trip into a fresh server gives identical hashes, in one revision under the structure lock; ids without gaps are kept, the others listed', async () => {
    const source = await t.server(LONG_LEASE);
    const a = await t.client(source, 'author');
    await a.withLocks({ structure: true, mode: 'write' }, (lock) =>
      a.edit.apply({
        ops: [
          { op: 'addFunction', name: 'lex', signature: { params: ['text'], returns: 'tokens' } },
          { op: 'addFunction', name: 'gone' },
          { op: 'addFunction', name: 'parse', signature: null },
          {
            op: 'addNode',
            function: 'lex',
            node: { id: 1, op: 'param', attrs: { name: 'text', nested: { a: [1, 2.5, 'é'] } } },
          },
          { op: 'addNode', function: 'lex', node: { id: 7, op: 'call', attrs: { fn: 'split' } } },
          { op: 'addEdge', function: 'lex', edge: { id: 3, from: { node: 1, port: 0 }, to: { node: 7, port: 2 } } },
          { op: 'addNode', function: 'parse', node: { id: 1, op: 'const' } },
        ],
        fences: lock.fences,
      }),
    );
    // A removed function leaves a gap in the ids (lex 1, parse 3).
    await a.withLocks({ structure: true, functions: [2], mode: 'write' }, (lock) =>
      a.edit.apply({ ops: [{ op: 'removeFunction', function: 2 }], fences: lock.fences }),
    );

    const file = join(dir, 'main.json');
    const exported = await lockstep(['export', '--url', source.url, '--output', file]);
    expect(exported).toMatchObject({ code: 0, stdout: '' });
    expect(exported.stderr).toBe(`exported program main at revision 2: 2 function(s) to ${file}\n`);
    const text = readFileSync(file, 'utf8');
    const json = JSON.parse(text) as ProgramFile;
    const validate = new Ajv2020({ strict: false }).compile(schema);
    expect(validate(json), JSON.stringify(validate.errors)).toBe(true);
    expect(json).toMatchObject({ format: 'lockstep-program', formatVersion: 1, program: 'main', revision: 2 });
    expect(json.functions.map((f) => [f.id, f.name, f.version])).toEqual([
      [1, 'lex', 1],
      [3, 'parse', 1],
    ]);
    const lex = await a.function.get({ function: 1 });
    expect(json.functions[0]).toEqual({ ...lex.function, version: 1, hash: lex.hash });

    const target = await t.server(LONG_LEASE);
    const imported = await lockstep(['import', file, '--url', target.url]);
    expect(imported.stderr).toBe('');
    expect(imported.code).toBe(0);
    expect(imported.stdout).toBe(
      `imported 2 function(s) into program main: revision 1, every hash as in ${file}\n  function 3 is now 2\n`,
    );
    const b = await t.client(target, 'checker', { role: 'observer' });
    const { revisions } = await b.history.list({});
    expect(revisions).toMatchObject([{ revision: 1, kind: 'edit', by: { name: 'lockstep-import' }, ops: 2 }]);

    // And back: the same content and hashes, function for function.
    const again = await lockstep(['export', '--url', target.url]);
    expect(again.code).toBe(0);
    const back = JSON.parse(again.stdout) as ProgramFile;
    expect(contents(back)).toEqual(contents(json));
    expect(back.functions.map((f) => f.id)).toEqual([1, 2]);
  });

  it('refuses a program that has functions, and a file whose content does not match its hashes', async () => {
    const s = await t.server(LONG_LEASE);
    const a = await t.client(s, 'author');
    await a.withLocks({ structure: true, mode: 'write' }, (lock) =>
      a.edit.apply({ ops: [{ op: 'addFunction', name: 'f', nodes: [{ id: 1, op: 'const' }] }], fences: lock.fences }),
    );
    const file = join(dir, 'f.json');
    expect((await lockstep(['export', '--url', s.url, '--output', file])).code).toBe(0);

    const [occupied, copy] = await Promise.all([
      lockstep(['import', file, '--url', s.url]),
      lockstep(['import', file, '--url', s.url, '--program', 'copy']),
    ]);
    expect(occupied.code).toBe(1);
    expect(occupied.stderr).toBe(
      'lockstep: program main has 1 function(s): import writes into an empty program only (choose another with --program, or delete this one first)\n',
    );

    expect(copy).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^imported 1 function\(s\) into program copy: revision 1,/),
    });
    const [main, copied] = await Promise.all([a.program.get(), a.program.get({ program: 'copy' })]);
    expect(copied.functions.map((f) => f.hash)).toEqual(main.functions.map((f) => f.hash));

    const json = JSON.parse(readFileSync(file, 'utf8')) as ProgramFile;
    (json.functions[0]?.nodes[0] as { op: string }).op = 'changed';
    const tampered = join(dir, 'tampered.json');
    writeFileSync(tampered, JSON.stringify(json));
    const [refused, notAFile] = await Promise.all([
      lockstep(['import', tampered, '--url', s.url, '--program', 'other']),
      lockstep(['import', join(dir, 'missing.json'), '--url', s.url]),
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      `lockstep: ${tampered}: the content of f (id 1) does not match its hash (changed since the export?)\n`,
    );
    expect((await a.program.list()).programs.map((p) => p.name).sort()).toEqual(['copy', 'main']);
    expect(notAFile).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^lockstep: cannot read .*missing\.json/),
    });
  });

  it('import needs an agent token and says so up front; from stdin it names the input', async () => {
    const agent = 'agent-token-0123456789abcdef';
    const observer = 'observer-token-0123456789abcdef';
    const s = await t.server({ ...LONG_LEASE, tokens: `agent:${agent},observer:${observer}` });
    const a = await t.client(s, 'author', { token: agent });
    await a.withLocks({ structure: true, mode: 'write' }, (lock) =>
      a.edit.apply({ ops: [{ op: 'addFunction', name: 'f' }], fences: lock.fences }),
    );
    const file = join(dir, 'tokens.json');
    // Export only reads: an observer's token does.
    expect((await lockstep(['export', '--url', s.url, '--token', observer, '--output', file])).code).toBe(0);

    const refused = await lockstep(['import', file, '--url', s.url, '--token', observer, '--program', 'copy']);
    expect(refused).toMatchObject({
      code: 1,
      stderr:
        "lockstep: import writes, so it needs an agent token (--token or LOCKSTEP_TOKEN): this one is an observer's; see docs/operations.md\n",
    });
    expect((await a.program.list()).programs.map((p) => p.name)).toEqual(['main']);

    const piped = await importFromStdin(file, ['--url', s.url, '--token', agent, '--program', 'copy']);
    expect(piped).toMatchObject({
      code: 0,
      stdout: 'imported 1 function(s) into program copy: revision 1, every hash as in the input (stdin)\n',
    });
  });
});
