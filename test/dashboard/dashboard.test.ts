import { mkdir } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import type { LockstepServer } from '../../src/server.ts';
import { addFunctions, useServers } from '../helpers/server.ts';
import { describeInBrowser, useBrowser } from '../helpers/browser.ts';

async function open(page: Page, s: LockstepServer): Promise<void> {
  await page.goto(`http://127.0.0.1:${s.port}/`);
  await page.locator('#conn[data-state="live"]').waitFor();
}

/** The log's sequence numbers, newest first as shown. */
async function logSeqs(page: Page): Promise<number[]> {
  return page
    .locator('#log .ev[data-seq]')
    .evaluateAll((els) => els.map((el) => Number((el as HTMLElement).dataset.seq)));
}

function expectContiguousDescending(seqs: number[]): void {
  const first = seqs[0]!;
  expect(seqs).toEqual(seqs.map((_, i) => first - i));
}

describeInBrowser('dashboard', () => {
  const t = useServers();
  const browser = useBrowser();

  it('serves the page with a strict content security policy', async () => {
    const s = await t.server();
    const res = await fetch(`http://127.0.0.1:${s.port}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'self'; connect-src 'self' ws: wss:/);
    const etag = res.headers.get('etag')!;
    expect((await fetch(`http://127.0.0.1:${s.port}/`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    const js = await fetch(`http://127.0.0.1:${s.port}/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`http://127.0.0.1:${s.port}/../server.ts`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${s.port}/%2e%2e/server.ts`)).status).toBe(404);
  });

  it('shows the holder, the queued agent at position 1, the hand-over and the events', async () => {
    const s = await t.server();
    const { page, problems } = await browser.page();
    await open(page, s);

    const planner = await t.agent(s, 'planner');
    const tester = await t.agent(s, 'tester');
    const [parse, emit, optimize] = await addFunctions(planner, ['parse', 'emit', 'optimize']);
    // A short lease taken first, so it is in its warning window by the time the screenshot is taken.
    const sprinter = await t.agent(s, 'sprinter');
    await sprinter.call('lock.acquire', {
      functions: [optimize],
      mode: 'write',
      ttlMs: 5000,
      description: 'inline hot loop',
    });

    await planner.call('lock.acquire', { functions: [parse], mode: 'write', description: 'refactor the parser' });
    expect(
      (await tester.call('lock.acquire', { functions: [parse], mode: 'write', wait: true, description: 'add tests' }))
        .status,
    ).toBe('queued');

    const row = page.locator(`#locks tr[data-key="main/f${parse}"]`);
    await row.locator('.holder .who', { hasText: 'planner' }).waitFor();
    await row.locator('.waiter', { hasText: 'tester' }).locator('.pos', { hasText: /^1$/ }).waitFor();
    expect(await row.locator('td.mode .badge').textContent()).toBe('write');
    expect(await row.locator('.holder .desc').textContent()).toBe('refactor the parser');
    await page
      .locator('#agents tr', { hasText: 'tester' })
      .locator('.waits', { hasText: 'parse #1 · write' })
      .waitFor();

    await planner.call('lock.release', { functions: [parse] });
    await tester.notification('lock.granted');
    await row.locator('.holder .who', { hasText: 'tester' }).waitFor();
    await row.locator('.waiter').waitFor({ state: 'detached' });
    await page.locator(`#programs tr[data-key="${parse}"] td.lock[data-lock="write"]`, { hasText: 'tester' }).waitFor();

    const log = page.locator('#log');
    for (const line of [
      'planner got write on main/parse',
      'tester waits for write on main/parse #1',
      'planner released main/parse',
      'tester got write on main/parse after waiting',
    ]) {
      await log.locator('.ev', { hasText: line }).waitFor();
    }
    const seqs = await logSeqs(page);
    expectContiguousDescending(seqs);
    expect(seqs[0]).toBe(s.inspect().events.lastSeq);

    // More going on for the screenshot: shared readers, a writer waiting behind them, an edit.
    const reviewer = await t.agent(s, 'reviewer');
    const linter = await t.agent(s, 'linter');
    await reviewer.call('lock.acquire', { functions: [emit], mode: 'read', description: 'review codegen' });
    await linter.call('lock.acquire', { functions: [emit], mode: 'read' });
    await planner.call('lock.acquire', {
      functions: [emit],
      mode: 'write',
      wait: true,
      description: 'rename emitters',
    });
    await tester.call('edit.apply', {
      ops: [{ op: 'addNode', function: parse, node: { id: 1, op: 'const', attrs: { value: 1 } } }],
    });
    await t.agent(s, 'watcher', 'observer');
    await page.locator(`#programs tr[data-key="${parse}"] td.version`, { hasText: 'v2' }).waitFor();
    await page.locator(`#locks tr[data-key="main/f${emit}"] .waiter`, { hasText: 'planner' }).waitFor();
    await page.locator(`#locks tr[data-key="main/f${optimize}"] .expiry.is-expiring`).waitFor();

    await mkdir('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/dashboard.png', fullPage: true });
    expect(problems).toEqual([]);
  });

  it('resumes from its last sequence number after the server drops it', async () => {
    const s = await t.server();
    const { page, problems } = await browser.page();
    await open(page, s);
    const a = await t.agent(s, 'alpha');
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    const row = page.locator(`#locks tr[data-key="main/f${f}"]`);
    await row.locator('.holder .who', { hasText: 'alpha' }).waitFor();
    const before = (await logSeqs(page))[0]!;

    // The idle timeout's path: the server closes the page's socket (4000) and ends its session.
    const dashboard = s
      .inspect()
      .sessions.list()
      .find((x) => x.role === 'observer')!;
    s.inspect().sessions.emit('idle', dashboard);
    // What happens while it is away reaches it only through the replay.
    const b = await t.agent(s, 'beta');
    await a.call('lock.release', { functions: [f] });
    await b.call('lock.acquire', { functions: [f], mode: 'read', description: 'read while away' });

    await row.locator('.holder .who', { hasText: 'beta' }).waitFor();
    await page.locator('#log .ev', { hasText: 'dashboard left (idle)' }).waitFor();
    await page.locator('#conn[data-state="live"]').waitFor();
    await page.locator(`#log .ev[data-seq="${s.inspect().events.lastSeq}"]`).waitFor();
    const seqs = await logSeqs(page);
    expectContiguousDescending(seqs);
    expect(seqs.at(-1)).toBeLessThanOrEqual(before);
    expect(await page.locator('#log .ev.gap').count()).toBe(0);
    expect(await page.locator('#agents tr', { hasText: 'dashboard' }).count()).toBe(1);
    expect(problems).toEqual([]);
  });

  it('re-reads everything when the server no longer has the events it missed', async () => {
    const first = await t.server();
    const { page, problems } = await browser.page();
    await open(page, first);
    const a = await t.agent(first, 'alpha');
    const [f] = await addFunctions(a, ['f']);
    await a.call('lock.acquire', { functions: [f], mode: 'write' });
    await page.locator(`#locks tr[data-key="main/f${f}"] .holder .who`, { hasText: 'alpha' }).waitFor();

    // A restart: sequence numbers start again, so the page's `since` is ahead of the new run's.
    await first.stop('restart');
    await page.locator('#conn[data-state="retrying"]').waitFor();
    const second = await t.server({ port: first.port });
    await page.locator('#log .ev.gap').waitFor();
    await page.locator('#agents tr', { hasText: 'alpha' }).waitFor({ state: 'detached' });
    await page.locator(`#locks tr[data-key="main/f${f}"]`).waitFor({ state: 'detached' });
    await page.locator('#conn[data-state="live"]').waitFor();

    const b = await t.agent(second, 'beta');
    const [g] = await addFunctions(b, ['g']);
    await b.call('lock.acquire', { functions: [g], mode: 'read' });
    await page.locator(`#locks tr[data-key="main/f${g}"] .holder .who`, { hasText: 'beta' }).waitFor();
    // Connection attempts while the server was down fail loudly in the console; nothing else may.
    expect(problems.filter((p) => !p.startsWith('WebSocket connection to'))).toEqual([]);
  });

  it('works with tokens on: the token travels in the URL fragment', async () => {
    const token = 'observer-token-for-the-dashboard';
    const s = await t.server({ tokens: `observer:${token},agent:agent-token-for-the-test-0` });
    const { page } = await browser.page();
    await page.goto(`http://127.0.0.1:${s.port}/`);
    await page.locator('#conn', { hasText: 'token' }).waitFor();
    expect(await page.locator('#conn').getAttribute('data-state')).not.toBe('live');

    await page.goto(`http://127.0.0.1:${s.port}/#token=${token}`);
    await page.reload();
    await page.locator('#conn[data-state="live"]').waitFor();
    await page.locator('#agents tr', { hasText: 'dashboard' }).locator('td', { hasText: 'observer' }).waitFor();
  });
});
