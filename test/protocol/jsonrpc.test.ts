import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Envelope, isBadCall, notificationFrame, parseCall, resultFrame } from '../../src/protocol/jsonrpc.ts';

// parseCall checks well-formed envelopes without zod (the hot path); it must accept exactly what
// the Envelope schema accepts, with the same id, method and params, less any frame with a key
// named "__proto__" anywhere (refused before the schema: docs/protocol.md, -32600).

const idLike = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.double(),
  fc.integer(),
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);
const envelopeLike = fc.record(
  {
    jsonrpc: fc.oneof(fc.constant('2.0'), fc.constant('2'), fc.constant(2), fc.constant(null)),
    id: idLike,
    method: fc.oneof(fc.string({ maxLength: 140 }), fc.integer(), fc.constant(null)),
    params: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 })),
    ),
    extra: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: [] },
);

/** Whether a key named "__proto__" is anywhere in the parsed value (JSON.parse makes it own). */
function hasProtoKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  return Object.keys(value).some((k) => k === '__proto__' || hasProtoKey((value as Record<string, unknown>)[k]));
}

describe('parseCall', () => {
  it('refuses a key named "__proto__" at any depth, which the schema alone would pass', () => {
    const text = '{"jsonrpc":"2.0","method":" ","extra":{"__proto__":""}}';
    expect(Envelope.safeParse(JSON.parse(text)).success).toBe(true);
    expect(isBadCall(parseCall(text))).toBe(true);
  });

  it('accepts exactly the envelopes the schema accepts, with the same call', () => {
    fc.assert(
      fc.property(envelopeLike, (value) => {
        const text = JSON.stringify(value);
        const schema = Envelope.safeParse(JSON.parse(text));
        const call = parseCall(text);
        expect(isBadCall(call)).toBe(!schema.success || hasProtoKey(JSON.parse(text)));
        if (schema.success && !isBadCall(call)) {
          expect(call).toEqual({ id: schema.data.id, method: schema.data.method, params: schema.data.params });
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('frames', () => {
  it('are the bytes of the stringified envelope', () => {
    const id = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constant(null),
    );
    fc.assert(
      fc.property(id, fc.string(), fc.jsonValue(), (i, method, value) => {
        expect(resultFrame(i, value)).toBe(JSON.stringify({ jsonrpc: '2.0', id: i, result: value }));
        expect(notificationFrame(method, value)).toBe(JSON.stringify({ jsonrpc: '2.0', method, params: value }));
      }),
      { numRuns: 1_000 },
    );
  });
});
