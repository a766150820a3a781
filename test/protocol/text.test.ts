import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { protocolJsonSchema } from '../../src/protocol/json-schema.ts';
import { isStorable, STORABLE_PATTERN, Text } from '../../src/protocol/text.ts';

// Rule 7 (docs/cluster.md): the text check and the pattern the JSON Schema states are one rule,
// whether a validator reads the pattern with the u flag or without it.

const pieces = fc.constantFrom('a', 'é', '\u0000', '\uD800', '\uDBFF', '\uDC00', '\uDFFF', '😀', '\uFFFF', ' ');
const texts = fc.oneof(
  fc.array(pieces, { maxLength: 6 }).map((p) => p.join('')),
  fc.string({ unit: 'binary' }),
);

describe('storable text', () => {
  it('refuses U+0000 and lone surrogates, and nothing else', () => {
    expect(isStorable('plain é 😀 \uFFFF')).toBe(true);
    for (const bad of ['a\u0000b', '\uD800', 'x\uDC00', '\uDC00\uD800', '😀\uD83D'])
      expect(isStorable(bad)).toBe(false);
  });

  it('states the same rule as its JSON Schema pattern, with and without the u flag', () => {
    const unicode = new RegExp(STORABLE_PATTERN, 'u');
    const plain = new RegExp(STORABLE_PATTERN);
    fc.assert(
      fc.property(texts, (s) => {
        expect(unicode.test(s)).toBe(isStorable(s));
        expect(plain.test(s)).toBe(isStorable(s));
      }),
      { numRuns: 5_000 },
    );
  });

  it('puts the pattern in the JSON Schema of a text field', () => {
    expect(Text(1, 8).toJSONSchema()).toMatchObject({ minLength: 1, maxLength: 8, pattern: STORABLE_PATTERN });
    expect(Text(1, 8).safeParse('a\u0000').error?.issues[0]?.message).toBe(
      'must not contain U+0000 or a lone surrogate',
    );
  });

  it('is stated for every string a method takes, in the generated JSON Schema', () => {
    const strings: Array<{ at: string; schema: Record<string, unknown> }> = [];
    const walk = (node: unknown, at: string) => {
      if (node === null || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      if (n.type === 'string') strings.push({ at, schema: n });
      for (const [key, value] of Object.entries(n)) walk(value, `${at}/${key}`);
    };
    for (const [name, method] of Object.entries(protocolJsonSchema().methods as Record<string, { params: unknown }>))
      walk(method.params, name);
    expect(strings.length).toBeGreaterThan(50);
    for (const { at, schema } of strings) {
      const accepts = (s: string) =>
        (schema.enum === undefined || (schema.enum as unknown[]).includes(s)) &&
        (schema.const === undefined || schema.const === s) &&
        (schema.pattern === undefined || new RegExp(schema.pattern as string, 'u').test(s));
      expect({ at, nul: accepts('a\u0000'), surrogate: accepts('\uD800') }).toEqual({
        at,
        nul: false,
        surrogate: false,
      });
    }
  });
});
