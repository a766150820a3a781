import { defineConfig } from 'vitest/config';
import { PG_BIN, postgresInstalled } from './test/helpers/postgres.ts';

// The suites that run case for case on both stores: every *.store.test.ts (a suite that uses the
// store fixture, test/helpers/service.ts, is named so: test/store-suites.test.ts checks it), the
// server's, and PostgreSQL's own. Without the PostgreSQL binaries a local run says so and skips
// that half; CI never skips it (it installs them, and the "postgres" project's setup fails loudly
// if they are missing).
export const POSTGRES_SUITES = [
  'test/**/*.store.test.ts',
  'test/postgres/**/*.test.ts',
  'test/cluster/**/*.test.ts',
  'test/server/**/*.test.ts',
  'test/faults/crash.test.ts',
];
const withPostgres = postgresInstalled() || process.env.CI === 'true';
if (!withPostgres) console.log(`PostgreSQL 15 not found in ${PG_BIN}: skipping the PostgreSQL store tests`);

export default defineConfig({
  test: {
    // Two cores: protocol tests start real servers, so keep the pool small and predictable.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 20_000,
    reporters: ['default'],
    // Property tests with a fixed seed unless FC_SEED says otherwise (test/helpers/fast-check-seed.ts).
    setupFiles: ['test/helpers/fast-check-seed.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'sqlite',
          include: ['test/**/*.test.ts'],
          exclude: ['test/postgres/**', 'test/cluster/**'],
          env: { LOCKSTEP_TEST_DB: 'sqlite' },
        },
      },
      ...(withPostgres
        ? [
            {
              extends: true as const,
              test: {
                name: 'postgres',
                include: POSTGRES_SUITES,
                globalSetup: ['test/helpers/postgres-setup.ts'],
                env: { LOCKSTEP_TEST_DB: 'postgres' },
              },
            },
          ]
        : []),
    ],
  },
});
