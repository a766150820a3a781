import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { POSTGRES_SUITES } from '../vitest.config.ts';

// A suite that uses the store fixture (test/helpers/service.ts: memoryService, freshLocation,
// testStore) runs on both stores only if the "postgres" project includes it: by its name
// (*.store.test.ts) or its folder. One that did not would pass on SQLite alone, silently.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const USES_STORE_FIXTURE =
  /import \{[^}]*\b(memoryService|freshLocation|testStore)\b[^}]*\} from '[^']*helpers\/service\.ts'/;

/** A glob of the vitest config (`**` any folders, `*` within a name) as a RegExp. */
function globRegExp(glob: string): RegExp {
  const parts = glob.split('**/').map((p) => p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*'));
  return new RegExp(`^${parts.join('(?:.*/)?')}$`);
}

describe('store suites', () => {
  it('every suite that uses the store fixture runs on PostgreSQL too', () => {
    const suites = (readdirSync(`${ROOT}test`, { recursive: true }) as string[])
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => `test/${f}`);
    const storeSuites = suites.filter((f) => USES_STORE_FIXTURE.test(readFileSync(`${ROOT}${f}`, 'utf8')));
    expect(storeSuites.length).toBeGreaterThan(0);
    const sqliteOnly = storeSuites.filter((f) => !POSTGRES_SUITES.some((glob) => globRegExp(glob).test(f)));
    expect(sqliteOnly).toEqual([]);
  });
});
