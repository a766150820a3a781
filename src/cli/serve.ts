import { parseArgs } from 'node:util';
import {
  ConfigError,
  envOf,
  flagOf,
  isBooleanOption,
  OPTION_NAMES,
  optionSpecs,
  resolveWithSources,
  type OptionName,
  type ServerConfig,
} from '../config.ts';
import { start } from '../server.ts';
import { isPostgresLocation, shownLocation } from '../service/index.ts';
import { rejectUnknownOptions } from './common.ts';
import { readConfigFile } from './config-file.ts';
import { table } from './table.ts';

/** Each option as --help and the options table in docs/protocol.md show it (test/docs.test.ts compares). */
export function optionRows(): Array<{ flag: string; env: string; default: string; doc: string }> {
  return OPTION_NAMES.map((name) => {
    const spec = optionSpecs[name];
    return {
      flag: `--${flagOf(name)}`,
      env: envOf(name),
      default: 'defaultShown' in spec ? spec.defaultShown : spec.default === undefined ? 'none' : String(spec.default),
      doc: spec.doc,
    };
  });
}

export function serveHelp(): string {
  const rows = optionRows().map((o, i) => {
    const flag = `  ${o.flag}${isBooleanOption(OPTION_NAMES[i] as OptionName) ? '' : ' <value>'}`;
    return `${flag.padEnd(36)} ${o.doc} (default ${o.default}; env ${o.env})`;
  });
  const own = [
    `${'  --config <file>'.padEnd(36)} a JSON file of these options by their camelCase names ({"maxSessions": 500});`,
    `${''.padEnd(36)} flags, then environment variables, win over it (env LOCKSTEP_CONFIG)`,
    `${'  --print-config'.padEnd(36)} print every option's value and where it came from, and exit`,
    `${'  --help'.padEnd(36)} show this text`,
  ];
  return `Usage: lockstep serve [options]\n\nStarts the server: ws://HOST:PORT/ws, dashboard at /, health at /healthz.\n\nOptions:\n${rows.join('\n')}\n${own.join('\n')}`;
}

/** Each option, its value (secrets masked) and where it came from: a flag, a variable, the file, the default. */
function printConfig(config: ServerConfig, sources: Record<OptionName, string>): string {
  const value = (name: OptionName) => {
    const v = config[name];
    if (v === undefined) return '-';
    if (name === 'tokens') return '(hidden)';
    return name === 'db' ? shownLocation(String(v)) : String(v);
  };
  return table(
    ['OPTION', 'VALUE', 'SOURCE'],
    OPTION_NAMES.map((name) => [`--${flagOf(name)}`, value(name), sources[name]]),
    '',
  );
}

export async function serve(argv: string[]): Promise<void> {
  rejectUnknownOptions('serve', argv, ['help', 'config', 'print-config', ...OPTION_NAMES.map(flagOf)]);
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      config: { type: 'string' },
      'print-config': { type: 'boolean' },
      ...Object.fromEntries(
        OPTION_NAMES.map((n) => [flagOf(n), { type: isBooleanOption(n) ? ('boolean' as const) : ('string' as const) }]),
      ),
    },
    strict: true,
  });
  if (values.help === true) {
    console.log(serveHelp());
    return;
  }
  const flags: Partial<Record<OptionName, unknown>> = {};
  for (const name of OPTION_NAMES) flags[name] = (values as Record<string, unknown>)[flagOf(name)];
  const configPath = values.config ?? process.env.LOCKSTEP_CONFIG;
  const file =
    configPath === undefined
      ? undefined
      : readConfigFile(configPath, values.config === undefined ? 'LOCKSTEP_CONFIG' : '--config');
  const { config, sources } = resolveWithSources(flags, process.env, file);
  if (values['print-config'] === true) {
    console.log(printConfig(config, sources));
    return;
  }
  const server = await start(config).catch((err: unknown) => {
    throw listenError(err, config.host, config.port) ?? err;
  });
  // Before the addresses are printed: a supervisor may stop the server as soon as it reads them.
  const onSignal = (signal: string) => {
    void server.stop(signal).then(() => process.exit(0));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // An online backup of a SQLite store, beside it (docs/operations.md).
  process.on('SIGUSR2', () => {
    if (config.db === ':memory:' || isPostgresLocation(config.db)) {
      console.error(
        `lockstep: SIGUSR2: no backup of ${config.db === ':memory:' ? 'a :memory: store' : 'PostgreSQL (use pg_dump)'}`,
      );
      return;
    }
    server
      .backup(`${config.db}.backup`)
      .catch((err: unknown) => console.error(`lockstep: backup failed: ${String(err)}`));
  });
  console.log(`lockstep listening on ${server.url}`);
  console.log(`dashboard ${server.dashboardUrl}`);
}

/** What to do when the port cannot be had, in place of Node's bare EADDRINUSE or EACCES. */
function listenError(err: unknown, host: string, port: number): ConfigError | undefined {
  const code = err instanceof Error && 'code' in err ? err.code : undefined;
  if (code === 'EADDRINUSE')
    return new ConfigError(
      `--port ${port}: already in use on ${host}; a lockstep server may already run there (lockstep status --url ws://${host}:${port}/ws shows it), or pass --port 0 to pick a free port`,
    );
  if (code === 'EACCES')
    return new ConfigError(
      `--port ${port}: not allowed to listen on ${host}; ports below 1024 need privileges, try --port 0`,
    );
  return undefined;
}
