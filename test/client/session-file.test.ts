import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findSessionRecord, type SessionRecord, sessionDir } from '../../src/client/session-file.ts';

function record(pid: number, ancestors: number[], sessionId: string): SessionRecord {
  return { sessionId, name: 'agent', urls: ['ws://127.0.0.1:1/ws'], pid, ancestors, at: new Date().toISOString() };
}

describe('session files', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function sessions(): string {
    const repo = mkdtempSync(join(tmpdir(), 'lockstep-session-file-'));
    dirs.push(repo);
    execFileSync('git', ['init', '-q'], { cwd: repo });
    const dir = sessionDir(repo) as string;
    expect(dir).toBe(join(repo, '.git', 'lockstep', 'sessions'));
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  const write = (dir: string, r: SessionRecord) => writeFileSync(join(dir, `${r.pid}.json`), JSON.stringify(r));

  it('finds the session of the nearest ancestor a live record lists, and no session outside any', async () => {
    const dir = sessions();
    expect(findSessionRecord(dir)).toBeUndefined();
    // A record listing this process (as a bridge lists the agent above it): found from a child too.
    write(dir, record(process.pid, [process.pid], 'mine'));
    expect(findSessionRecord(dir)).toEqual({ record: expect.objectContaining({ sessionId: 'mine' }) });
    const child = spawn('sleep', ['30']);
    try {
      expect(findSessionRecord(dir, child.pid)).toEqual({ record: expect.objectContaining({ sessionId: 'mine' }) });
    } finally {
      child.kill();
    }
    expect(sessionDir(tmpdir())).toBeUndefined();
  });

  it('a process two live records list is ambiguous; a record of a process that is gone is ignored', async () => {
    const dir = sessions();
    const other = spawn('sleep', ['30']);
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    try {
      write(dir, record(gone.pid as number, [gone.pid as number, process.pid], 'dead'));
      write(dir, record(process.pid, [process.pid], 'mine'));
      expect(findSessionRecord(dir)).toEqual({ record: expect.objectContaining({ sessionId: 'mine' }) });
      write(dir, record(other.pid as number, [other.pid as number, process.pid], 'theirs'));
      const found = findSessionRecord(dir);
      expect(
        found !== undefined && 'ambiguous' in found ? found.ambiguous.map((r) => r.sessionId).sort() : found,
      ).toEqual(['mine', 'theirs']);
    } finally {
      other.kill();
    }
  });
});
