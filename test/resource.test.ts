import { describe, expect, it } from 'vitest';
import { compareResources, normalizeResources, Resource, resourceKey } from '../src/protocol/resource.ts';
import { LockstepError } from '../src/protocol/errors.ts';

describe('resources', () => {
  it('sorts by program, structure first, then function id, and drops duplicates', () => {
    const out = normalizeResources([
      { program: 'main', function: 10 },
      { program: 'aux', function: 2 },
      { program: 'main', structure: true },
      { program: 'main', function: 2 },
      { program: 'main', function: 10 },
    ]);
    expect(out).toEqual([
      { program: 'aux', function: 2 },
      { program: 'main', structure: true },
      { program: 'main', function: 2 },
      { program: 'main', function: 10 },
    ]);
    expect([...out].sort(compareResources)).toEqual(out);
  });

  it('gives distinct keys to the structure and to functions', () => {
    expect(resourceKey({ program: 'p', structure: true })).not.toBe(resourceKey({ program: 'p', function: 1 }));
  });

  it('rejects mixed or malformed shapes', () => {
    expect(Resource.safeParse({ program: 'main', function: 0 }).success).toBe(false);
    expect(Resource.safeParse({ program: 'main', structure: false }).success).toBe(false);
    expect(Resource.safeParse({ program: 'a b', function: 1 }).success).toBe(false);
    expect(Resource.safeParse({ program: 'main', function: 1, extra: 1 }).success).toBe(false);
  });
});

describe('errors', () => {
  it('carry code, type, retryable and retryAfterMs into the JSON-RPC data', () => {
    const e = new LockstepError('LOCK_DENIED', 'held', { holders: [] }, 12.2);
    expect(e.toRpcError()).toEqual({
      code: 423,
      message: 'held',
      data: { type: 'LOCK_DENIED', retryable: true, holders: [], retryAfterMs: 13 },
    });
  });
});
