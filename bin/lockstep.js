#!/usr/bin/env node
// From a clone: `lockstep` on the TypeScript sources through tsx, so a clone needs no build step
// (the tests run the command this way). The installed package's command is the build, dist/cli.js.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
