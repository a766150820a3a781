import { describe, expect, it } from 'vitest';
import { serveHelp } from '../../src/cli/serve.ts';
import { ConfigError, envOf, flagOf, type OptionName, optionSpecs, resolveConfig } from '../../src/config.ts';
import { limitSpecs, lockSpecs } from '../../src/protocol/limits.ts';
import { start } from '../../src/server.ts';
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

describe('start() refuses what lockstep serve refuses', () => {
  // One of each: a value out of its range, one of the wrong kind, and every relation between options.
  const refused: Array<Partial<Record<OptionName, number | string>>> = [
    { minTtlMs: 10, maxTtlMs: 5 },
    { defaultTtlMs: 50, minTtlMs: 100 },
    { leaseTtlMs: 1000, leaseRenewMs: 600, leaseDriftMs: 400 },
    { maxMessageBytes: 4096, hardMaxMessageBytes: 2048 },
    { port: 70_000 },
    { heartbeatMs: 5 },
    { logLevel: 'loud' },
    { db: '/nonexistent/dir/x.db' },
  ];

  it.each(refused)("%o: a TypeError with the command line's message, naming the property", async (options) => {
    const flags = Object.fromEntries(Object.entries(options).map(([k, v]) => [k, String(v)]));
    const cli = (() => {
      try {
        resolveConfig(flags, {});
      } catch (err) {
        return err as Error;
      }
      throw new Error('lockstep serve took it');
    })();
    expect(cli).toBeInstanceOf(ConfigError);
    const message = cli.message
      .replace(/--([a-z-]+)/g, (_, flag: string) => flag.replace(/-([a-z])/g, (_m, ch: string) => ch.toUpperCase()))
      .replace(/\(got "(\d+)"\)/, '(got $1)');
    const refusal = start({ db: ':memory:', ...options } as never);
    await expect(refusal).rejects.toThrow(TypeError);
    await expect(refusal).rejects.toMatchObject({ message });
  });

  it('an unknown option is refused by name', async () => {
    await expect(start({ db: ':memory:', minTtl: 5 } as never)).rejects.toThrow(
      new ConfigError('unknown option minTtl'),
    );
  });
});
