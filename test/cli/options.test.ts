import { describe, expect, it } from 'vitest';
import { serveHelp } from '../../src/cli/serve.ts';
import { envOf, flagOf, type OptionName, optionSpecs, resolveConfig } from '../../src/config.ts';
import { limitSpecs, lockSpecs } from '../../src/protocol/limits.ts';
import { useServers } from '../helpers/server.ts';

const helloOptions = [...Object.keys(lockSpecs), ...Object.keys(limitSpecs)] as OptionName[];

describe('one declaration for the limits and lease defaults', () => {
  const t = useServers();

  it('each is an option of lockstep serve, with its default and environment variable in --help', () => {
    const help = serveHelp();
    for (const name of helloOptions) {
      const spec = optionSpecs[name];
      expect(help).toMatch(
        new RegExp(
          `--${flagOf(name)} <value> +${spec.doc.replace(/[()]/g, '\\$&')} \\(default ${spec.default}; env ${envOf(name)}\\)`,
        ),
      );
    }
  });

  it('the hello result reports each as configured, and nothing else', async () => {
    const config = resolveConfig({ maxBatch: '7', warningMs: '1234' }, {});
    const s = await t.server({ maxBatch: config.maxBatch, warningMs: config.warningMs });
    const c = await t.raw(s);
    const hello = await c.call('session.hello', { protocol: 1 });
    expect(Object.keys(hello.limits).sort()).toEqual(Object.keys(limitSpecs).sort());
    expect(Object.keys(hello.lock).sort()).toEqual(Object.keys(lockSpecs).sort());
    for (const name of helloOptions) expect({ ...hello.lock, ...hello.limits }[name]).toBe(config[name]);
    expect(hello.limits.maxBatch).toBe(7);
    expect(hello.lock.warningMs).toBe(1234);
  });
});
