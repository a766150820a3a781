import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { selfTimes, type CpuProfile, type SelfTimes } from './cpu-profile.ts';

/** "name version" of an installed package, for saying which client library drove a system. */
export function packageVersion(name: string): string {
  const file = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  return `${name} ${(JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version}`;
}

let clockTicks: number | undefined;

/**
 * CPU time (user + system, every thread) a process has used, in µs, from /proc (Linux; undefined
 * elsewhere or once it is gone). Clock-tick resolution (10 ms where CLK_TCK is 100), fine over a
 * phase of a second or more.
 */
export function processCpuUs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (in parentheses, which may hold spaces): utime is the 12th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks;
  } catch {
    return undefined;
  }
}

/** A free loopback TCP port; the tiny race until the caller binds it is harmless on a quiet loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Child {
  readonly proc: ChildProcess;
  readonly port: number;
  /** Resident set size after a full GC, in bytes. */
  rss(): Promise<number>;
  /** Starts V8's CPU profiler in the child; `stopProfile` ends it and returns the self times. */
  startProfile(): Promise<void>;
  stopProfile(): Promise<SelfTimes>;
  /** Sends a command the child's own file answers (lockstep-server.ts's trace-start, trace-stop). */
  ask(cmd: string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * Runs a bench server file (a TypeScript module that reports `{port}` over IPC once listening) in
 * its own Node process, so its CPU and memory are apart from the load generator's, as a Redis or
 * etcd server is.
 */
export async function forkServer(
  file: string,
  opts: unknown,
  execArgv: string[] = [],
  args: string[] = [],
  /** Takes the child's standard output line by line (V8's --trace-gc-nvp lines, turns.ts) instead of passing it on. */
  stdout?: (line: string) => void,
): Promise<Child> {
  const proc = fork(fileURLToPath(new URL(file, import.meta.url)), [JSON.stringify(opts), ...args], {
    execArgv: ['--import', 'tsx', '--expose-gc', ...execArgv],
    stdio: ['ignore', stdout === undefined ? 'inherit' : 'pipe', 'inherit', 'ipc'],
  });
  if (stdout !== undefined && proc.stdout !== null) createInterface({ input: proc.stdout }).on('line', stdout);
  const replies: Array<(m: Record<string, unknown>) => void> = [];
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${file} exited with ${code} before listening`)));
    proc.once('message', (m) => resolve((m as { port: number }).port));
  });
  proc.removeAllListeners('exit');
  proc.on('message', (m) => replies.shift()?.(m as Record<string, unknown>));
  const ask = (cmd: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      replies.push(resolve);
      proc.send({ cmd });
    });
  return {
    proc,
    port,
    rss: async () => (await ask('rss')).rss as number,
    startProfile: async () => {
      await ask('profile-start');
    },
    stopProfile: async () => (await ask('profile-stop')).profile as SelfTimes,
    ask,
    stop: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.send({ cmd: 'stop' });
      // A server that does not drain in time is killed: the bench must end by itself.
      await Promise.race([exited, sleep(10_000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

/** Child side of forkServer: answers rss, profile-start, profile-stop and stop over IPC. */
export function serveIpc(port: number, stop: () => Promise<void>): void {
  const inspector = new Session();
  process.on('message', async (m: { cmd: string }) => {
    if (m.cmd === 'rss') {
      globalThis.gc?.();
      process.send?.({ rss: process.memoryUsage().rss });
    } else if (m.cmd === 'profile-start') {
      inspector.connect();
      await inspector.post('Profiler.enable');
      await inspector.post('Profiler.start');
      process.send?.({});
    } else if (m.cmd === 'profile-stop') {
      const { profile } = await inspector.post('Profiler.stop');
      inspector.disconnect();
      process.send?.({ profile: selfTimes(profile as CpuProfile) });
    } else if (m.cmd === 'stop') {
      void stop().finally(() => process.exit(0));
    }
  });
  // The bench died without stopping us: do not outlive it.
  process.on('disconnect', () => process.exit(0));
  process.send?.({ port });
}

export async function waitFor(what: string, ms: number, probe: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await probe().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${what} not ready after ${ms} ms`);
}
