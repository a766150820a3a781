import { openSqliteStore } from './sqlite-store.ts';
import type { ServiceClock } from './service-types.ts';
import type { ProgramStore } from './store.ts';

/**
 * The one place that knows which persistence backs a location: the service only ever sees a
 * ProgramStore. Throws StoreError when the store cannot be used.
 */
export async function openStore(location: string, clock: ServiceClock): Promise<ProgramStore> {
  return openSqliteStore(location, clock);
}
