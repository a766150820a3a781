import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe } from 'vitest';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/**
 * `describe` for tests that need the browser. Without chromium a local `npm test` skips them with
 * one line saying why; under CI (which installs chromium) a missing browser fails instead.
 */
// Without chromium a local `npm test` skips only the browser tests, saying why in one line; under
// CI, which installs chromium, a missing browser fails instead of passing silently.
const missing = !existsSync(CHROMIUM) && process.env.CI === undefined;
if (missing)
  console.warn(
    `lockstep: skipping the browser tests: no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`,
  );
export const describeInBrowser = describe.skipIf(missing);

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * Debian's chromium, headless, with a user-data dir of its own (removed afterwards) so no profile
 * state leaks between runs. One browser per test file; each test gets a fresh page.
 */
export function useBrowser() {
  let context: BrowserContext | undefined;
  let profile = '';
  beforeAll(async () => {
    profile = await mkdtemp(join(tmpdir(), 'lockstep-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1440, height: 900 },
    });
  });
  afterAll(async () => {
    await context?.close();
    await rm(profile, { recursive: true, force: true });
  });
  return {
    /** A new page, and the errors it logs (uncaught exceptions, CSP violations, failed loads). */
    async page(): Promise<{ page: Page; problems: string[] }> {
      if (context === undefined) throw new Error('browser not started');
      const page = await context.newPage();
      page.setDefaultTimeout(10_000);
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(String(err)));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      return { page, problems };
    },
  };
}
