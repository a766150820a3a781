// npm run build (also run by npm's prepare, so before npm pack): src/ compiled to dist/ with
// declarations, plus what the server reads at run time as it is (the dashboard's static files).
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
cpSync(new URL('../src/dashboard', import.meta.url), new URL('../dist/dashboard', import.meta.url), {
  recursive: true,
});
// The package's command (package.json "bin"): tsc writes files without the run bit, and `npx
// lockstep` in a clone runs this file itself (an install links it and sets the bit, a clone not).
chmodSync(new URL('../dist/cli.js', import.meta.url), 0o755);
