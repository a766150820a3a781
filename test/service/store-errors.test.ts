import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ProgramService, StoreError } from '../../src/service/index.ts';
import { SCHEMA_VERSION } from '../../src/service/migrations.ts';
import { chain } from '../helpers/service.ts';
import { systemClock } from '../../src/concurrency/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-store-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function openError(path: string): Promise<StoreError> {
  try {
    await (await ProgramService.open({ path, clock: systemClock })).close();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).message).toContain(path);
    return err as StoreError;
  }
  throw new Error(`opening ${path} succeeded`);
}

/** A store with a little content, closed (its WAL folded back into the file). */
async function populated(name: string): Promise<string> {
  const path = join(dir, name);
  const svc = await ProgramService.open({ path, clock: systemClock });
  await chain(svc, 'f');
  await chain(svc, 'g');
  await svc.close();
  return path;
}

/**
 * Opens the store in a child process that file permissions apply to. Root ignores them, so as root
 * the child runs without the capabilities that override them (setpriv drops them from its bounding
 * set); it stays root otherwise, so it can still reach the checkout wherever CI cloned it.
 */
function openAsUser(path: string): { ok: boolean; name?: string; message?: string } {
  const node = [process.execPath, '--import', 'tsx', 'test/fixtures/service-open.ts', path];
  const [cmd, ...args] =
    process.getuid?.() === 0 ? ['setpriv', '--bounding-set', '-dac_override,-dac_read_search', '--', ...node] : node;
  const result = spawnSync(cmd!, args, { encoding: 'utf8' });
  const line = result.stdout.trim().split('\n').at(-1);
  if (line === undefined || line === '') throw new Error(`no outcome from the child: ${result.stderr}`);
  return JSON.parse(line) as { ok: boolean; name?: string; message?: string };
}

describe('opening a bad store fails with a clear StoreError', () => {
  it('for a file that is not a database', async () => {
    const path = join(dir, 'garbage.db');
    writeFileSync(path, 'this is certainly not an SQLite database\n'.repeat(200));
    expect((await openError(path)).message).toMatch(/not a database, or is corrupt/);
  });

  it('for a database with damaged pages', async () => {
    const path = await populated('damaged.db');
    const { size } = statSync(path);
    const fd = openSync(path, 'r+');
    // Keep page 1 (header and schema root), overwrite the rest.
    writeSync(fd, Buffer.alloc(size - 4096, 0xa5), 0, size - 4096, 4096);
    closeSync(fd);
    expect((await openError(path)).message).toMatch(/corrupt/);
  });

  it('for a function whose stored body does not match its hash', async () => {
    const path = await populated('tampered.db');
    const db = new Database(path);
    const row = db.prepare('SELECT body FROM function_versions WHERE function_id = 2').pluck().get() as string;
    db.prepare('UPDATE function_versions SET body = ? WHERE function_id = 2').run(row.replace('"neg"', '"abs"'));
    db.close();
    expect((await openError(path)).message).toMatch(
      /corrupt: program main, function 2 version 1 does not match its stored hash/,
    );
  });

  it('for a schema newer than this server knows', async () => {
    const path = await populated('newer.db');
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    expect((await openError(path)).message).toMatch(
      new RegExp(`schema version 99 is newer than this server supports \\(${SCHEMA_VERSION}\\)`),
    );
    // The failed open left nothing behind: once the version is back, the store opens.
    const fix = new Database(path);
    fix.pragma(`user_version = ${SCHEMA_VERSION}`);
    fix.close();
    const svc = await ProgramService.open({ path, clock: systemClock });
    expect(svc.getProgram('main').functions).toHaveLength(2);
    await svc.close();
  });

  it('for some other SQLite database', async () => {
    const path = join(dir, 'foreign.db');
    const db = new Database(path);
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)');
    db.close();
    expect((await openError(path)).message).toMatch(/not a Lockstep store/);
  });

  it('for a path that is a directory', async () => {
    const path = join(dir, 'a-directory.db');
    mkdirSync(path);
    expect((await openError(path)).message).toMatch(/cannot be opened/);
  });

  it('for a directory that cannot be created', async () => {
    const file = join(dir, 'plain-file');
    writeFileSync(file, '');
    expect((await openError(join(file, 'sub', 'lockstep.db'))).message).toMatch(/directory cannot be created/);
  });

  it('for an unreadable file', async () => {
    const path = await populated('unreadable.db');
    chmodSync(path, 0o000);
    const outcome = openAsUser(path);
    expect(outcome).toMatchObject({ ok: false, name: 'StoreError' });
    expect(outcome.message).toContain(path);
    expect(outcome.message).toMatch(/cannot be opened|permission denied/);
  });

  it('for a read-only file', async () => {
    const path = await populated('read-only.db');
    chmodSync(path, 0o444);
    const outcome = openAsUser(path);
    expect(outcome).toMatchObject({ ok: false, name: 'StoreError' });
    expect(outcome.message).toContain(path);
    expect(outcome.message).toMatch(/read-only/);
  });

  it('while a readable, writable store opens fine in the same kind of child', async () => {
    expect(openAsUser(await populated('fine.db'))).toEqual({ ok: true });
  });
});

describe('a URL that is not a PostgreSQL one', () => {
  it('is refused, without echoing its credentials', async () => {
    const err = await ProgramService.open({ path: 'mysql://root:pw-123@db.example/x', clock: systemClock }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).message).toMatch(/unsupported kind: use a file path, :memory:, or a postgres:\/\//);
    expect((err as StoreError).message).not.toContain('pw-123');
  });
});
