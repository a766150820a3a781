import { afterEach, expect, inject, it } from 'vitest';
import { type LockstepServer, start } from '../../src/server.ts';
import { describeInBrowser, useBrowser } from '../helpers/browser.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { TIMING } from './leader-nodes.ts';

// The dashboard of a standby says so and links the leader's dashboard (from NOT_LEADER's data).

describeInBrowser('cluster: dashboard on a standby', () => {
  const browser = useBrowser();
  const servers: LockstepServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop('test over')));
  });

  it('says this node is a standby and links the leader', async () => {
    const db = await freshDatabase(inject('postgresUrl'));
    for (let i = 0; i < 2; i++) servers.push(await start({ port: 0, db, logLevel: 'silent', ...TIMING }));
    const [leader, standby] = servers as [LockstepServer, LockstepServer];
    const { page } = await browser.page();
    await page.goto(`http://127.0.0.1:${standby.port}/`);
    const banner = page.locator('#standby');
    await banner.waitFor();
    expect(await banner.textContent()).toBe(`This node is a cluster standby. The leader is 127.0.0.1:${leader.port}.`);
    expect(await banner.locator('a').getAttribute('href')).toBe(`http://127.0.0.1:${leader.port}/`);

    // The leader's own page is live and shows no such banner.
    await page.goto(`http://127.0.0.1:${leader.port}/`);
    await page.locator('#conn[data-state="live"]').waitFor();
    expect(await page.locator('#standby').isHidden()).toBe(true);
  });
});
