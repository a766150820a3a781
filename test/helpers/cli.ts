import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/lockstep.js', import.meta.url));

/** A pattern of status's UP column: a node's uptime passes a minute on a loaded machine ("1m05s"). */
export const UP_COLUMN = '\\d+(?:m\\d{2})?s';

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a node process to its end, collecting its output. */
export function runNode(args: readonly string[], env: Record<string, string> = {}): Promise<Ran> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child);
}

/** `lockstep <args>` through bin/lockstep.js, as a user runs it. */
export function lockstep(args: readonly string[], env: Record<string, string> = {}): Promise<Ran> {
  return runNode([BIN, ...args], env);
}

export function spawnLockstep(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function collect(child: ChildProcess): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The first stdout line that matches, as soon as it is printed. */
export function lineMatching(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (d: Buffer) => {
      buffered += d.toString();
      for (const line of buffered.split('\n')) {
        const m = line.match(pattern);
        if (m !== null) {
          child.stdout?.off('data', onData);
          resolve(m);
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('close', (code) => reject(new Error(`exited with ${code} before printing ${pattern}`)));
  });
}
