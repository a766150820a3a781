// vitest globalSetup of the "postgres" project: one throwaway cluster for the whole run.
import type { TestProject } from 'vitest/node';
import { PG_BIN, postgresInstalled, startPostgres } from './postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!postgresInstalled()) {
    throw new Error(`PostgreSQL 15 is not installed (${PG_BIN}): install postgresql-15 (CI does, see .ci/run)`);
  }
  const cluster = await startPostgres();
  project.provide('postgresUrl', cluster.url);
  return () => cluster.stop();
}
