import canonicalize from 'canonicalize';
import { blake3 } from '@noble/hashes/blake3.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { Edge, JsonValue, Node } from '../protocol/program.ts';

/** What the content hash covers: the function's own id deliberately is not part of it. */
export interface HashableFunction {
  name: string;
  signature?: JsonValue | undefined;
  nodes: readonly Node[];
  edges: readonly Edge[];
}

const byId = (a: { id: number }, b: { id: number }): number => a.id - b.id;

/**
 * The exact JSON text the hash is taken over (docs/protocol.md, "Content hashes"), a cross-language contract: every
 * field is rebuilt explicitly so that extra properties on the input can never leak into the hash.
 */
export function canonicalFunction(fn: HashableFunction): string {
  const text = canonicalize({
    edges: [...fn.edges].sort(byId).map((e) => ({
      from: { node: e.from.node, port: e.from.port },
      id: e.id,
      to: { node: e.to.node, port: e.to.port },
    })),
    name: fn.name,
    nodes: [...fn.nodes].sort(byId).map((n) => ({ attrs: n.attrs ?? {}, id: n.id, op: n.op })),
    signature: fn.signature ?? null,
  });
  if (text === undefined) throw new Error('canonicalize returned nothing for an object');
  return text;
}

const encoder = new TextEncoder();

/** blake3-256 of the UTF-8 canonical JSON, as 64 lowercase hex characters. */
export function functionHash(fn: HashableFunction): string {
  return bytesToHex(blake3(encoder.encode(canonicalFunction(fn))));
}
