import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_TYPES } from '../src/protocol/errors.ts';
import { protocolJsonSchemaText } from '../src/protocol/json-schema.ts';
import { METHOD_NAMES } from '../src/protocol/methods.ts';
import { NOTIFICATION_NAMES } from '../src/protocol/notifications.ts';

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

  it('commit the JSON Schema exactly as generated (npm run schema)', () => {
    expect(read('docs/protocol.schema.json')).toBe(protocolJsonSchemaText());
  });
});
