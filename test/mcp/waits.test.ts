import { describe, expect, it } from 'vitest';
import { until } from '../helpers/until.ts';
import { useSdk } from '../helpers/sdk.ts';
import { freePort } from '../helpers/server.ts';
import { type Bridge, useBridges } from '../helpers/mcp-bridges.ts';

/** program_overview until it answers without error, within the bound the test asserts. */
function overviewOnceUp(b: Bridge): Promise<string> {
  return until('the bridge connects and answers', 30_000, async () => {
    const r = await b.call('program_overview', {});
    return r.isError ? undefined : r.text;
  });
}

// Each bridge is a fresh node process on the sources (tsx): a few seconds to start on a loaded machine.
describe('lockstep mcp waits for its server', { timeout: 90_000 }, () => {
  const t = useSdk();
  const bridge = useBridges();

  it('started before the server it lists its tools, answers a call with the URL and the cause, and connects once the server is up', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}/ws`;
    const b = await bridge(url, 'early');
    const { tools } = await b.client.listTools();
    expect(tools.map((x) => x.name)).toContain('lock_acquire');

    const early = await b.call('program_overview', {});
    expect(early.isError).toBe(true);
    expect(early.text).toMatch(
      new RegExp(
        `^CONNECT_FAILED: not connected to the Lockstep server at ${url}: cannot connect to ${url}: .*ECONNREFUSED`,
      ),
    );
    expect(early.data.error).toMatchObject({ type: 'CONNECT_FAILED', retryable: true, data: { urls: [url] } });
    expect(b.stderr()).toContain(`waiting for the server: cannot connect to ${url}`);

    await t.server({ port });
    expect(await overviewOnceUp(b)).toMatch(/^program main, revision 0/);
    expect(b.stderr()).toContain(`connected to ${url} as early`);
  });

  it('across a restart of the server it answers what is wrong while it is down, then carries on', async () => {
    const first = await t.server();
    const b = await bridge(first.url, 'steady');
    expect((await b.call('program_overview', {})).isError).toBe(false);

    await first.stop('restart');
    const down = await until('a call answers that the server is gone', 30_000, async () => {
      const r = await b.call('program_overview', {});
      return r.isError ? r : undefined;
    });
    expect(down.text).toMatch(new RegExp(`^CONNECT_FAILED: not connected to the Lockstep server at ${first.url}: `));
    expect(down.text).toContain('The bridge keeps trying');

    // A new server (nothing kept: :memory:, no resume grace): the agent is told its session went.
    await t.server({ port: first.port });
    const after = await overviewOnceUp(b);
    expect(after).toMatch(/^Since your last call:\n- the connection dropped and the session was lost/);
    expect(after).toMatch(/\n\nprogram main, revision 0/);
  });
});
