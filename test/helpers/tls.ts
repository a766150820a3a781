import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
 * removed after the file's tests. EC keys: quick to make on a loaded machine.
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

function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-tls-'));
  const at = (f: string) => join(dir, f);
  const ssl = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    at('ca.key'),
    '-out',
    at('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=Lockstep test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  ssl('req', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(at('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  ssl(
    'x509',
    '-req',
    '-in',
    at('server.csr'),
    '-CA',
    at('ca.pem'),
    '-CAkey',
    at('ca.key'),
    '-CAcreateserial',
    '-out',
    at('server.pem'),
    '-days',
    '2',
    '-extfile',
    at('server.ext'),
  );
  return {
    dir,
    caFile: at('ca.pem'),
    certFile: at('server.pem'),
    keyFile: at('server.key'),
    ca: readFileSync(at('ca.pem')),
  };
}
