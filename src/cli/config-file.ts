import { readFileSync } from 'node:fs';
import { ConfigError, type ConfigFile, flagOf, OPTION_NAMES } from '../config.ts';
import { nearest } from './common.ts';

/**
 * A `lockstep serve --config` file: one JSON object whose keys are the options' property names
 * (`maxSessions` for --max-sessions, as start() takes them). A key that is no option is refused,
 * naming the nearest one; the values are checked later, by the same schemas as flags.
 */
export function readConfigFile(path: string, source: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const why = err instanceof Error && 'code' in err && err.code === 'ENOENT' ? 'no such file' : String(err);
    throw new ConfigError(`${source}: cannot read ${JSON.stringify(path)}: ${why}`);
  }
  let values: unknown;
  try {
    values = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: ${path} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof values !== 'object' || values === null || Array.isArray(values))
    throw new ConfigError(`${source}: ${path} must hold one JSON object of options`);
  for (const key of Object.keys(values)) {
    if ((OPTION_NAMES as readonly string[]).includes(key)) continue;
    // A flag's spelling names its option too: say which property that is.
    const byFlag = OPTION_NAMES.find((n) => flagOf(n) === key.replace(/^--/, ''));
    const guess = byFlag ?? nearest(key, OPTION_NAMES);
    throw new ConfigError(
      `${path}: unknown option ${JSON.stringify(key)}${guess === undefined ? '' : ` (did you mean "${guess}"?)`}; the keys are the options of "lockstep serve --help" in camelCase (--max-sessions is maxSessions)`,
    );
  }
  return { path, values: values as Record<string, unknown> };
}
