// `npm run bench -- --baseline[=REV]`: the Lockstep server of another commit (default: the
// merge-base DEFAULT_BASELINE) runs beside the current one, so every Lockstep workload reports
// current against baseline in one run. The commit's files are exported (`git archive`, which
// leaves the repository's worktrees and index alone) into a directory under the system temp dir,
// kept for the next run; its node_modules is this checkout's (a symlink) when every package its
// lock file names is installed here at the same version, else its own `npm ci`.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The state before the round of request-path work this comparison was made for. */
export const DEFAULT_BASELINE = '0c8d39e';
export const BASELINE_NAME = 'Lockstep (baseline)';

export interface Baseline {
  /** Short commit id, as the report shows it. */
  short: string;
  /** The server module to import start() from. */
  serverModule: string;
  /** 'shared' when its node_modules is this checkout's, 'own' when it needed its own npm ci. */
  nodeModules: 'shared' | 'own';
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function git(args: string[], opts: { input?: Buffer } = {}): string {
  const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return String(r.stdout).trim();
}

/** The argument of --baseline: undefined without the flag, DEFAULT_BASELINE for a bare --baseline. */
export function baselineArg(argv: readonly string[]): string | undefined {
  const a = argv.find((x) => x === '--baseline' || x.startsWith('--baseline='));
  if (a === undefined) return undefined;
  const rev = a.slice('--baseline='.length);
  return a === '--baseline' || rev === '' ? DEFAULT_BASELINE : rev;
}

type Lock = { packages: Record<string, { version?: string }> };
const readLock = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Lock;

/** Every installed package the baseline's lock file names is installed here at the same version. */
function sameModules(dir: string): boolean {
  const theirs = readLock(join(dir, 'package-lock.json')).packages;
  const ours = readLock(join(ROOT, 'package-lock.json')).packages;
  return Object.entries(theirs).every(([path, p]) => path === '' || ours[path]?.version === p.version);
}

/** Exports REV (once per commit) and installs its modules; returns how to start its server. */
export function prepareBaseline(rev: string): Baseline {
  const sha = git(['rev-parse', '--verify', `${rev}^{commit}`]);
  const short = git(['rev-parse', '--short', sha]);
  const dir = join(tmpdir(), `lockstep-baseline-${sha.slice(0, 12)}`);
  const done = join(dir, '.lockstep-baseline-ready');
  // existsSync follows the symlink: a cache made from a checkout since removed is made again.
  if (!existsSync(done) || !existsSync(join(dir, 'node_modules'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const archive = spawnSync('git', ['archive', '--format=tar', sha], { cwd: ROOT, maxBuffer: 1 << 30 });
    if (archive.status !== 0) throw new Error(`git archive ${sha}: ${archive.stderr}`);
    const untar = spawnSync('tar', ['-x', '-C', dir], { input: archive.stdout });
    if (untar.status !== 0) throw new Error(`tar: ${untar.stderr}`);
    if (sameModules(dir)) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    else {
      console.log(`baseline ${short}: its packages differ from this checkout's, running npm ci there`);
      const ci = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
      if (ci.status !== 0) throw new Error(`npm ci for the baseline ${short} failed`);
    }
    writeFileSync(done, `${sha}\n`);
  }
  const shared = lstatSync(join(dir, 'node_modules')).isSymbolicLink();
  return { short, serverModule: join(dir, 'src', 'server.ts'), nodeModules: shared ? 'shared' : 'own' };
}
