import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll } from 'vitest';

/** A throwaway CA and a server certificate it signed, for 127.0.0.1 and localhost. Never committed. */
export interface TestCertificates {
  dir: string;
  /** The CA's certificate (PEM): what a client is told to trust (NODE_EXTRA_CA_CERTS, or `ca`). */
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: Buffer;
}

const OPENSSL = '/usr/bin/openssl';

/**
 * Made with openssl when the tests run (CI installs it where missing), in a temporary directory
 * removed after the file's tests. EC keys, as the docs' commands make: quick on a loaded machine.
 */
export function useCertificates(): () => TestCertificates {
  if (!existsSync(OPENSSL)) throw new Error(`no ${OPENSSL}: apt-get install openssl (CI installs it)`);
  let made: TestCertificates | undefined;
  afterAll(() => {
    if (made !== undefined) rmSync(made.dir, { recursive: true, force: true });
  });
  return () => {
    made ??= makeCertificates();
    return made;
  };
}

/**
 * The openssl commands of docs/security.md, "Certificates", run as written (so the page's commands
 * are the ones tested): the first sh block of that section, in a fresh directory.
 */
function makeCertificates(): TestCertificates {
  const page = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
  const section = page.slice(page.indexOf('\n## Certificates\n'));
  const commands = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (commands === undefined) throw new Error('docs/security.md, "Certificates": no sh block');
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-tls-'));
  execFileSync('/bin/sh', ['-e', '-c', commands], {
    cwd: dir,
    stdio: 'pipe',
    env: { ...process.env, PATH: `${dirname(OPENSSL)}:${process.env.PATH ?? ''}` },
  });
  const at = (f: string) => join(dir, f);
  return {
    dir,
    caFile: at('ca.pem'),
    certFile: at('node.pem'),
    keyFile: at('node-key.pem'),
    ca: readFileSync(at('ca.pem')),
  };
}
