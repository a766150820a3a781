import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';
import { useSdk } from '../helpers/sdk.ts';

const run = promisify(execFile);
/** Creating a venv and installing one wheel, on a loaded 2-core machine. */
const VENV_TIMEOUT_MS = 180_000;

/** The README's commands for the Python example in a virtual environment (its second sh block there). */
function venvCommands(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('**Python**'));
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const venv = blocks.find((b) => b.includes('venv'));
  if (venv === undefined) throw new Error('README.md has no venv block under **Python**');
  return venv.trim().split('\n');
}

/** Debian's python3 has venv (python3-venv, which CI installs); without it a local run skips. */
function venvAvailable(): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import ensurepip, venv'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const available = venvAvailable() || process.env.CI === 'true';
if (!available) console.log('python3-venv not installed: skipping the Python venv test');

describe.skipIf(!available)('examples/python in a virtual environment, as the README says', () => {
  const t = useSdk();
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-venv-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'python3 -m venv, pip install websockets, and the agent runs its round with the venv python',
    async () => {
      const [create, install, agent] = venvCommands();
      expect(create).toBe('python3 -m venv .venv');
      expect(install).toBe('.venv/bin/pip install websockets');
      expect(agent).toBe('.venv/bin/python examples/python/agent.py ws://127.0.0.1:7420/ws');
      const venv = join(dir, '.venv');
      // Debian's python3: the one python3-venv belongs to (the first on PATH may be another).
      await run('/usr/bin/python3', ['-m', 'venv', venv]);
      await run(join(venv, 'bin/pip'), ['install', '--quiet', 'websockets']);
      const s = await t.server();
      const { stdout } = await run(join(venv, 'bin/python'), ['examples/python/agent.py', s.url], { cwd: ROOT });
      const steps = stdout.trim().split('\n');
      expect(steps[0]).toMatch(/^hello: /);
      expect(steps.at(-1)).toMatch(/^released/);
    },
    VENV_TIMEOUT_MS,
  );
});
