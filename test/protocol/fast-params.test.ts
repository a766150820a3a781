import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fastParams, fastParse } from '../../src/protocol/fast-params.ts';
import { methods, type MethodName } from '../../src/protocol/methods.ts';

// The plain param checks may accept only what the zod schemas accept, exactly as the schemas
// would return it; the schemas stay the definition of the wire format.

const anyValue = fc.oneof(fc.integer(), fc.boolean(), fc.string({ maxLength: 3 }), fc.constant(null));
const intLike = fc.oneof(
  fc.integer({ min: -2, max: 5 }),
  fc.constantFrom(1.5, 2 ** 53, 2 ** 53 - 1, 0),
  fc.constant('1'),
);
// Text no store can hold (docs/cluster.md, rule 7): the schemas refuse it, so must the fast path.
const unstorable = fc.constantFrom('a\u0000', '\uD800', 'x\uDC00y');
const selectorLike = fc.record(
  {
    program: fc.oneof(fc.constantFrom('main', 'a b', '', 'x'.repeat(64), 'x'.repeat(65), 'ok-1.2_3', 'é'), anyValue),
    functions: fc.oneof(fc.array(intLike, { maxLength: 4 }), anyValue),
    structure: fc.oneof(fc.boolean(), anyValue),
  },
  { requiredKeys: [] },
);
const extrasLike = fc.record(
  {
    mode: fc.oneof(fc.constantFrom('read', 'write', 'exclusive'), anyValue),
    ttlMs: fc.oneof(intLike, anyValue),
    description: fc.oneof(fc.string({ maxLength: 5 }), fc.constant('d'.repeat(1025)), unstorable, anyValue),
    wait: fc.oneof(fc.boolean(), anyValue),
    waitTimeoutMs: fc.oneof(intLike, anyValue),
    key: fc.oneof(fc.string({ maxLength: 3 }), fc.constant('k'.repeat(129)), unstorable, anyValue),
    ticket: fc.string({ maxLength: 3 }),
  },
  { requiredKeys: [] },
);
// Half the time a bare selector (release's whole shape), else with other methods' keys mixed in.
const paramsLike = fc
  .tuple(selectorLike, fc.oneof(fc.constant({}), extrasLike))
  .map(([selector, extras]) => ({ ...selector, ...extras }));

describe('fast param checks', () => {
  for (const method of Object.keys(fastParams) as MethodName[]) {
    it(`${method}: accepts only what its schema accepts, unchanged`, () => {
      fc.assert(
        fc.property(paramsLike, (raw) => {
          const p = JSON.parse(JSON.stringify(raw));
          if (fastParse(method, p) === undefined) return;
          const schema = methods[method].params.safeParse(p);
          expect(schema.success).toBe(true);
          expect(schema.data).toEqual(p);
        }),
        { numRuns: 3_000 },
      );
    });
  }

  it('takes the common calls', () => {
    expect(fastParse('session.ping', {})).toEqual({});
    expect(fastParse('lock.acquire', { functions: [3], mode: 'write' })).toBeDefined();
    expect(fastParse('lock.acquire', { program: 'main', structure: true, mode: 'read', wait: true })).toBeDefined();
    expect(fastParse('lock.release', { functions: [3] })).toBeDefined();
    expect(fastParse('lock.renew', { functions: [3], ttlMs: 60_000 })).toBeDefined();
    expect(fastParse('lock.release', {})).toBeUndefined();
    // Left to the schema, which names the field (docs/cluster.md, rule 7).
    expect(fastParse('lock.acquire', { functions: [3], mode: 'write', description: 'a\u0000' })).toBeUndefined();
    expect(fastParse('lock.acquire', { functions: [3], mode: 'write', key: '\uD800' })).toBeUndefined();
  });
});
