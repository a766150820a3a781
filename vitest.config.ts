import { defineConfig } from 'vitest/config';
import { PG_BIN, postgresInstalled } from './test/helpers/postgres.ts';

// The store and service suites run case for case against both stores. Without the PostgreSQL
// binaries a local run says so and skips that half; CI never skips it (it installs them, and
// the "postgres" project's setup fails loudly if they are missing).
const storeSuites = [
  'test/service/ops.test.ts',
  'test/service/history.test.ts',
  'test/service/diff.test.ts',
  'test/service/locks.test.ts',
  'test/service/boundaries.test.ts',
  'test/service/clock.test.ts',
  'test/service/edit-fences.test.ts',
  'test/service/edit-keys.test.ts',
  'test/service/durability.test.ts',
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
                include: [
                  ...storeSuites,
                  'test/postgres/**/*.test.ts',
                  'test/cluster/**/*.test.ts',
                  'test/server/**/*.test.ts',
                  'test/faults/crash.test.ts',
                ],
                globalSetup: ['test/helpers/postgres-setup.ts'],
                env: { LOCKSTEP_TEST_DB: 'postgres' },
              },
            },
          ]
        : []),
    ],
  },
});
