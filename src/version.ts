import { createRequire } from 'node:module';

/** The package version, reported in session.hello and /healthz. */
export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
