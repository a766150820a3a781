import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { optionRows } from '../src/cli/serve.ts';
import { ERROR_TYPES } from '../src/protocol/errors.ts';
import { protocolJsonSchemaText } from '../src/protocol/json-schema.ts';
import { programFileJsonSchemaText } from '../src/protocol/program-file.ts';
import { METHOD_NAMES } from '../src/protocol/methods.ts';
import { NOTIFICATION_NAMES } from '../src/protocol/notifications.ts';
import { eventRows } from './helpers/protocol-doc.ts';

const read = (p: string) => readFileSync(new URL(`../${p}`, import.meta.url), 'utf8');

describe('docs agree with the code', () => {
  const doc = read('docs/protocol.md');

  it('document every method under its own heading', () => {
    const missing = METHOD_NAMES.filter((m) => !doc.includes(`### \`${m}\``));
    expect(missing).toEqual([]);
  });

  it('document every notification under its own heading', () => {
    const missing = NOTIFICATION_NAMES.filter((n) => !doc.includes(`### \`${n}\``));
    expect(missing).toEqual([]);
  });

  it('list every error type', () => {
    expect(ERROR_TYPES.filter((e) => !doc.includes(`\`${e}\``))).toEqual([]);
  });

  it('give every event type the server emits a row in its topic table, and no other', () => {
    const emitted = new Set<string>();
    for (const file of readdirSync(new URL('../src/coordinator/', import.meta.url))) {
      const source = read(`src/coordinator/${file}`);
      for (const m of source.matchAll(/events\.append\(\s*'(\w+)',\s*'(\w+)'/g)) emitted.add(`${m[1]} ${m[2]}`);
    }
    expect(emitted.size).toBeGreaterThan(15);
    expect(
      eventRows()
        .map((r) => r.key)
        .sort(),
    ).toEqual([...emitted].sort());
  });

  it('print the hash test vectors exactly as the hash test reads them', () => {
    const section = doc.slice(doc.indexOf('### Hash test vectors'));
    const block = /```json\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBe(read('test/service/vectors/hash-vectors.json'));
  });

  it('list every server option as lockstep serve --help does: flag, environment, default, what', () => {
    const start = doc.indexOf('## Limits and defaults');
    const section = doc.slice(start, doc.indexOf('\n## ', start));
    const rows = section
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim().replace(/^`(.*)`$/, '$1')),
      );
    expect(rows).toEqual(optionRows().map((o) => [o.flag, o.env, o.default, o.doc]));
  });

  it('commit the JSON Schema exactly as generated (npm run schema)', () => {
    expect(read('docs/protocol.schema.json')).toBe(protocolJsonSchemaText());
  });

  it("commit the program file's JSON Schema exactly as generated (npm run schema)", () => {
    expect(read('docs/program-file.schema.json')).toBe(programFileJsonSchemaText());
  });
});
