import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import type { LockstepServer } from '../../src/server.ts';
import { addFunctions, useServers } from '../helpers/server.ts';
import { describeInBrowser, useBrowser } from '../helpers/browser.ts';

async function open(page: Page, s: LockstepServer): Promise<void> {
  await page.goto(`http://127.0.0.1:${s.port}/`);
  await page.locator('#conn[data-state="live"]').waitFor();
}

/** Elements whose content is wider than their box: text the reader does not get to see. */
function clipped(page: Page, selector: string): Promise<string[]> {
  return page
    .locator(selector)
    .evaluateAll((els) =>
      els.filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => `${el.className}: ${el.textContent}`),
    );
}

describeInBrowser('dashboard states', () => {
  const t = useServers();
  const browser = useBrowser();

  it('shows lock denials and edit conflicts in the log, with a count in the header', async () => {
    const s = await t.server();
    const { page, problems } = await browser.page();
    await open(page, s);
    const planner = await t.agent(s, 'planner');
    const tester = await t.agent(s, 'tester');
    const [parse] = await addFunctions(planner, ['parse']);
    await planner.call('lock.acquire', { functions: [parse], mode: 'write' });
    expect((await tester.fail('lock.acquire', { functions: [parse], mode: 'write' })).data?.type).toBe('LOCK_DENIED');

    await page
      .locator('#log .ev.type-denied', { hasText: 'tester was denied write on main/parse: held by planner (write)' })
      .waitFor();
    await page
      .locator('#refusals[data-denials="1"][data-conflicts="0"]', { hasText: '0 conflicts · 1 denial' })
      .waitFor();

    // The edit gate's conflict event, as the server puts it on the edits topic.
    s.inspect().events.append('edits', 'conflict', () => ({
      sessionId: 'x',
      name: 'tester',
      program: 'main',
      method: 'edit.apply',
      reason: 'hash',
      functions: [parse],
    }));
    await page
      .locator('#log .ev.type-conflict', {
        hasText: "tester's edit.apply was refused on main/parse: changed since it was read",
      })
      .waitFor();
    await page.locator('#refusals[data-conflicts="1"]', { hasText: '1 conflict · 1 denial' }).waitFor();
    expect(problems).toEqual([]);
  });

  it('marks everything stale when the server goes, and reads it again when one is back', async () => {
    const first = await t.server();
    const { page } = await browser.page();
    await open(page, first);
    const a = await t.agent(first, 'alpha');
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const row = page.locator(`#locks tr[data-key="main/f${f}"]`);
    await row.locator('.expiry .ttl', { hasText: /^\d+:\d\d$/ }).waitFor();
    expect(await page.locator('#stale').isHidden()).toBe(true);

    await first.stop('restart');
    await page.locator('#stale', { hasText: 'Connection lost at' }).waitFor();
    expect(await page.locator('body').getAttribute('data-stale')).toBe('true');
    // The countdown no longer ticks towards an expiry nobody can confirm.
    await row.locator('.expiry.is-stale .ttl', { hasText: '—' }).waitFor();

    const second = await t.server({ port: first.port });
    await page.locator('#conn[data-state="live"]').waitFor();
    await page.locator('#stale').waitFor({ state: 'hidden' });
    await row.waitFor({ state: 'detached' });
    expect(await page.locator('body').getAttribute('data-stale')).toBeNull();
    const b = await t.agent(second, 'beta');
    const [g] = await addFunctions(b, ['g']);
    await b.call('lock.acquire', { functions: [g], mode: 'read' });
    await page
      .locator(`#locks tr[data-key="main/f${g}"] .expiry:not(.is-stale) .ttl`, { hasText: /^\d+:\d\d$/ })
      .waitFor();
  });

  for (const width of [1024, 1280, 1440]) {
    it(`at ${width} px: counts agree, no heading or cell is cut, an idle agent shows as idle, a free resource with a queue says what its head waits for`, async () => {
      const s = await t.server();
      const { page, problems } = await browser.page();
      await page.setViewportSize({ width, height: 900 });
      await open(page, s);
      const obs = await t.agent(s, 'observability-agent');
      const linter = await t.agent(s, 'linter');
      const tester = await t.agent(s, 'tester');
      await t.agent(s, 'idler');
      await t.agent(s, 'script', 'observer');
      const [hooks, resolve, typecheck] = await addFunctions(obs, ['observability_hooks', 'resolve', 'typecheck']);
      await obs.call('lock.acquire', { functions: [hooks], mode: 'write', description: 'instrument everything' });
      // The page itself and the script are the observers, in the header and the panel alike.
      await page.locator('#summary', { hasText: '4 agents · 2 observers · 1 lock held · 0 waiting' }).waitFor();
      await page.locator('#agents-count', { hasText: /^4 · 2 observers$/ }).waitFor();
      await page.locator('#locks-count', { hasText: /^1 held$/ }).waitFor();
      // Holding nothing and waiting for nothing: idle, said in its row; observers are not agents at work.
      await page
        .locator('#agents tr', { hasText: 'idler' })
        .locator('.holds .chip.idle', { hasText: /^idle$/ })
        .waitFor();
      await page.locator('#agents tr', { hasText: 'linter' }).locator('.holds .chip.idle').waitFor();
      expect(await page.locator('#agents tr', { hasText: 'script' }).locator('.chip').count()).toBe(0);

      await linter.call('lock.acquire', { functions: [typecheck], mode: 'write' });
      // A batch: resolve is free, typecheck is held, so the request waits at the head of both queues.
      await obs.call('lock.acquire', { functions: [resolve, typecheck], mode: 'write', wait: true });
      await tester.call('lock.acquire', { functions: [hooks], mode: 'read', wait: true });
      await page.locator('#summary', { hasText: '4 agents · 2 observers · 2 locks held · 2 waiting' }).waitFor();
      await page
        .locator('#agents tr', { hasText: 'linter' })
        .locator('.holds .chip.idle')
        .waitFor({ state: 'detached' });
      expect(await page.locator('#agents .chip.idle').count()).toBe(1);
      await page.locator('#locks-count', { hasText: /^2 held · 1 awaited$/ }).waitFor();
      await page
        .locator(
          `#locks tr[data-key="main/f${resolve}"] td.holders[data-free="free: observability-agent waits for it together with main/typecheck (held by linter)"]`,
        )
        .waitFor();
      await page.locator(`#locks tr[data-key="main/f${hooks}"] .waiter`, { hasText: 'tester' }).waitFor();
      await page
        .locator('.program-head .structure-label', { hasText: 'structure lock (add, remove, rename functions)' })
        .waitFor();

      expect(
        await clipped(
          page,
          'h1, h2, .table th, #agents td, #agents .chip, #locks td, #locks .waiter .who, #programs td',
        ),
      ).toEqual([]);
      await page.screenshot({ path: `test-artifacts/dashboard-${width}.png`, fullPage: true });
      expect(problems).toEqual([]);
    });
  }
});
