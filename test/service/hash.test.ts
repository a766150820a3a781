import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blake3 } from '@noble/hashes/blake3.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalFunction, functionHash } from '../../src/service/hash.ts';
import type { HashableFunction } from '../../src/service/hash.ts';

interface Vector {
  name: string;
  input: HashableFunction;
  canonical: string;
  hash: string;
}

const vectors = (
  JSON.parse(readFileSync(new URL('./vectors/hash-vectors.json', import.meta.url), 'utf8')) as { vectors: Vector[] }
).vectors;

/** The same value with every object's keys in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reverseKeys(v)]),
    );
  }
  return value;
}

describe('content hash', () => {
  it('uses the reference blake3', () => {
    expect(bytesToHex(blake3(new Uint8Array()))).toBe(
      'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
    );
  });

  it.each(vectors.map((v) => [v.name, v] as const))('matches the committed vector: %s', (_, v) => {
    expect(canonicalFunction(v.input)).toBe(v.canonical);
    expect(functionHash(v.input)).toBe(v.hash);
    expect(v.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps the -0 and 1e21 literals of the vector file (JSON.parse gives -0)', () => {
    const numbers = vectors.find((v) => v.name === 'numbers in ECMAScript form');
    expect(Object.is(numbers?.input.nodes[0]?.attrs?.negzero, -0)).toBe(true);
    expect(numbers?.canonical).toContain('"big":1e+21');
    expect(numbers?.canonical).toContain('"negzero":0,');
  });

  it('does not depend on key order or on the order of nodes and edges', () => {
    for (const v of vectors) {
      const reversed = reverseKeys(v.input) as HashableFunction;
      const shuffled = { ...reversed, nodes: [...reversed.nodes].reverse(), edges: [...reversed.edges].reverse() };
      expect(functionHash(shuffled)).toBe(v.hash);
    }
    const base = vectors[1]?.input as HashableFunction;
    fc.assert(
      fc.property(
        fc.shuffledSubarray([...base.nodes], { minLength: base.nodes.length }),
        fc.shuffledSubarray([...base.edges], { minLength: base.edges.length }),
        (nodes, edges) => {
          expect(functionHash({ ...base, nodes, edges })).toBe(functionHash(base));
        },
      ),
    );
  });

  it('treats absent attrs as {} and absent signature as null, and ignores the function id and extra fields', () => {
    const a = { name: 'f', nodes: [{ id: 1, op: 'x' }], edges: [] };
    const b = { id: 99, name: 'f', signature: null, nodes: [{ id: 1, op: 'x', attrs: {} }], edges: [], extra: true };
    expect(functionHash(a)).toBe(functionHash(b));
  });

  it('changes with a rename, an op, an attribute, a port or the signature', () => {
    const base: HashableFunction = {
      name: 'f',
      signature: { a: 1 },
      nodes: [
        { id: 1, op: 'const', attrs: { v: 1 } },
        { id: 2, op: 'neg' },
      ],
      edges: [{ id: 1, from: { node: 1, port: 0 }, to: { node: 2, port: 0 } }],
    };
    const variants: HashableFunction[] = [
      { ...base, name: 'g' },
      { ...base, signature: { a: 2 } },
      {
        ...base,
        nodes: [
          { id: 1, op: 'var', attrs: { v: 1 } },
          { id: 2, op: 'neg' },
        ],
      },
      {
        ...base,
        nodes: [
          { id: 1, op: 'const', attrs: { v: '1' } },
          { id: 2, op: 'neg' },
        ],
      },
      { ...base, edges: [{ id: 1, from: { node: 1, port: 1 }, to: { node: 2, port: 0 } }] },
      { ...base, edges: [{ id: 2, from: { node: 1, port: 0 }, to: { node: 2, port: 0 } }] },
    ];
    const hashes = new Set([base, ...variants].map(functionHash));
    expect(hashes.size).toBe(variants.length + 1);
  });

  it('hashes the UTF-8 bytes of the canonical text', () => {
    const fn = { name: 'ünï', nodes: [], edges: [] };
    expect(functionHash(fn)).toBe(
      bytesToHex(blake3(new TextEncoder().encode('{"edges":[],"name":"ünï","nodes":[],"signature":null}'))),
    );
  });
});
