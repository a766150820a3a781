import { redactUrl, type WriteFence } from './pg-connection.ts';
import { openPostgresStore } from './pg-store.ts';
import type { ServiceClock } from './service-types.ts';
import { openSqliteStore } from './sqlite-store.ts';
import { StoreError } from './store.ts';
import type { ProgramStore } from './store.ts';

const POSTGRES_URL = /^postgres(ql)?:\/\//i;
const ANY_URL = /^[a-z][a-z0-9+.-]*:\/\//i;

/** The location as it may be shown in messages and logs: a database password is masked. */
export function shownLocation(location: string): string {
  return POSTGRES_URL.test(location) ? redactUrl(location) : location;
}

/**
 * The one place that knows which persistence backs a location: a postgres:// or postgresql:// URL
 * is a PostgreSQL database, anything else that looks like a URL is refused, and the rest is a
 * SQLite file path (or ':memory:'). The service only ever sees a ProgramStore. Throws StoreError
 * when the store cannot be used. `fence` (cluster mode) is for PostgreSQL only.
 */
export async function openStore(location: string, clock: ServiceClock, fence?: WriteFence): Promise<ProgramStore> {
  if (POSTGRES_URL.test(location)) return openPostgresStore(location, clock, fence);
  if (ANY_URL.test(location)) {
    const scheme = location.slice(0, location.indexOf(':'));
    throw new StoreError(
      `${scheme}://…`,
      `is a URL of an unsupported kind: use a file path, :memory:, or a postgres:// / postgresql:// URL`,
    );
  }
  if (fence !== undefined) throw new StoreError(location, 'cluster mode needs a postgres:// store');
  return openSqliteStore(location, clock);
}

/** The SQLite file a location names; undefined for ':memory:' and for URLs (PostgreSQL, or refused). */
export function sqliteFileOf(location: string): string | undefined {
  return location === ':memory:' || ANY_URL.test(location) ? undefined : location;
}

/** A PostgreSQL store: cluster mode (docs/cluster.md). */
export function isPostgresLocation(location: string): boolean {
  return POSTGRES_URL.test(location);
}
