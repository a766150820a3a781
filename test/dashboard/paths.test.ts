import { expect, it } from 'vitest';
import { useServers } from '../helpers/server.ts';
import { describeInBrowser, useBrowser } from '../helpers/browser.ts';

describeInBrowser('dashboard path locks', () => {
  const t = useServers();
  const browser = useBrowser();

  it('shows path locks as a tree with holders and queues, and follows a hand-over', async () => {
    const s = await t.server();
    const { page, problems } = await browser.page();
    await page.goto(`http://127.0.0.1:${s.port}/`);
    await page.locator('#conn[data-state="live"]').waitFor();
    await page.locator('#paths-empty').waitFor();

    const alice = await t.agent(s, 'alice');
    const bob = await t.agent(s, 'bob');
    const carol = await t.agent(s, 'carol');
    await alice.call('lock.acquire', { paths: ['src'], mode: 'write', description: 'split the parser' });
    await carol.call('lock.acquire', { paths: ['docs/guide/intro.md'], mode: 'read' });
    expect((await bob.call('lock.acquire', { paths: ['src/app/main.ts'], mode: 'write', wait: true })).status).toBe(
      'queued',
    );

    const program = page.locator('#paths .path-program[data-program="main"]');
    const src = program.locator('li.path-node[data-path="src"]');
    await src.locator(':scope > .path-line .holder .who', { hasText: 'alice' }).waitFor();
    expect(await src.locator(':scope > .path-line .holder .badge').textContent()).toBe('write');
    expect(await src.locator(':scope > .path-line .holder .desc').textContent()).toBe('split the parser');
    // Bob waits for a file below src: his queue entry is on that file, nested under src.
    const main = src.locator('li.path-node[data-path="src/app/main.ts"]');
    await main.locator('.waiter', { hasText: 'bob' }).locator('.pos', { hasText: /^1$/ }).waitFor();
    expect(await src.locator('li.path-node[data-path="src/app"] > .path-line .seg').textContent()).toBe('app/');
    await program.locator('li.path-node[data-path="docs/guide/intro.md"] .holder .who', { hasText: 'carol' }).waitFor();
    // The function lock table does not list path locks.
    expect(await page.locator('#locks tr').count()).toBe(0);
    expect(await page.locator('#paths-count').textContent()).toBe('2 held · 1 awaited');

    await alice.call('lock.release', { paths: ['src'] });
    await bob.notification('lock.granted');
    await main.locator(':scope > .path-line .holder .who', { hasText: 'bob' }).waitFor();
    await src.locator(':scope > .path-line .holder').waitFor({ state: 'detached' });
    expect(problems).toEqual([]);
  });
});
