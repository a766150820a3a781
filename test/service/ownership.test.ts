import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LockstepClient } from '../../src/client/index.ts';
import { systemClock } from '../../src/concurrency/index.ts';
import { ProgramService } from '../../src/service/index.ts';
import { start } from '../../src/server.ts';
import { chain } from '../helpers/service.ts';
import { collect, lineMatching, spawnLockstep } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-owner-'));
const started: ChildProcess[] = [];
afterAll(() => {
  // A failed expectation must not leave a server behind.
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function serveProcess(path: string): ChildProcess {
  const child = spawnLockstep(['serve', '--port', '0', '--db', path, '--log-level', 'silent']);
  started.push(child);
  return child;
}

/** A `lockstep serve` on the file, once it listens; its url and its end. */
async function serveOn(path: string) {
  const child = serveProcess(path);
  const done = collect(child);
  const [, url] = await lineMatching(child, /^lockstep listening on (ws:\/\/\S+)$/);
  return { child, done, url: url as string };
}

async function addFunction(url: string, name: string): Promise<number> {
  const c = await LockstepClient.connect({ url, name: 'owner-test', reconnect: false });
  try {
    await c.lock.acquire({ structure: true, mode: 'write' });
    const result = await c.edit.apply({ ops: [{ op: 'addFunction', name }] });
    return result.revision;
  } finally {
    await c.close();
  }
}

describe('one store, one owner', () => {
  // Three server processes start one after another: on a loaded machine that takes a while.
  it('refuses a second server on the same file, and a kill -9 of the owner frees the file', {
    timeout: 60_000,
  }, async () => {
    const path = join(dir, 'owned.db');
    const owner = await serveOn(path);
    expect(await addFunction(owner.url, 'first')).toBe(1);

    // Another process, the way a user would start it. Were it to start, it is stopped at once.
    const child = serveProcess(path);
    const ran = collect(child);
    lineMatching(child, /listening/).then(
      () => child.kill('SIGKILL'),
      () => {},
    );
    const second = await ran;
    expect(second.stdout).not.toContain('listening');
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`program store ${path}: is held by another server`);

    // The owner was not disturbed by the attempt.
    expect(await addFunction(owner.url, 'second')).toBe(2);

    owner.child.kill('SIGKILL');
    expect((await owner.done).signal).toBe('SIGKILL');

    const next = await serveOn(path);
    try {
      expect(await addFunction(next.url, 'third')).toBe(3);
    } finally {
      next.child.kill('SIGTERM');
      expect((await next.done).code).toBe(0);
    }
  });

  it('lets the file go when start() cannot listen, so the next server on it starts', async () => {
    const taken = await start({ port: 0, db: join(dir, 'taken.db'), logLevel: 'silent' });
    const path = join(dir, 'unlistened.db');
    try {
      await expect(start({ port: taken.port, db: path, logLevel: 'silent' })).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
      const next = await start({ port: 0, db: path, logLevel: 'silent' });
      expect(await addFunction(next.url, 'after')).toBe(1);
      await next.stop();
    } finally {
      await taken.stop();
    }
  });

  it('leaves :memory: alone: every in-memory store is its own', async () => {
    const first = await ProgramService.open({ path: ':memory:', clock: systemClock });
    const second = await ProgramService.open({ path: ':memory:', clock: systemClock });
    await chain(first);
    expect(second.getProgram('main').functions).toEqual([]);
    await chain(second, 'g');
    expect(first.getProgram('main').functions.map((f) => f.name)).toEqual(['f']);
    await first.close();
    await second.close();
  });
});
