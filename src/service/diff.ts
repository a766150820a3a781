import canonicalize from 'canonicalize';
import type { Edge, FunctionBody, FunctionDiff, Node } from '../protocol/program.ts';

const json = (value: unknown): string | undefined => canonicalize(value);

function sameNode(a: Node, b: Node): boolean {
  return a.op === b.op && json(a.attrs ?? {}) === json(b.attrs ?? {});
}

function sameEdge(a: Edge, b: Edge): boolean {
  return (
    a.from.node === b.from.node && a.from.port === b.from.port && a.to.node === b.to.node && a.to.port === b.to.port
  );
}

function diffById<T extends { id: number }>(
  before: readonly T[],
  after: readonly T[],
  same: (a: T, b: T) => boolean,
): { added: T[]; removed: T[]; modified: Array<{ id: number; before: T; after: T }> } {
  const old = new Map(before.map((item) => [item.id, item]));
  const now = new Map(after.map((item) => [item.id, item]));
  const byId = (a: { id: number }, b: { id: number }): number => a.id - b.id;
  return {
    added: after.filter((item) => !old.has(item.id)).sort(byId),
    removed: before.filter((item) => !now.has(item.id)).sort(byId),
    modified: after
      .flatMap((item) => {
        const prior = old.get(item.id);
        return prior === undefined || same(prior, item) ? [] : [{ id: item.id, before: prior, after: item }];
      })
      .sort(byId),
  };
}

/** What changed from `before` to `after` (two versions of one function). */
export function diffFunctions(before: FunctionBody, after: FunctionBody): FunctionDiff {
  const diff: FunctionDiff = {
    nodes: diffById<Node>(before.nodes, after.nodes, sameNode),
    edges: diffById<Edge>(before.edges, after.edges, sameEdge),
  };
  if (before.name !== after.name) diff.name = { before: before.name, after: after.name };
  const sigBefore = before.signature ?? null;
  const sigAfter = after.signature ?? null;
  if (json(sigBefore) !== json(sigAfter)) diff.signature = { before: sigBefore, after: sigAfter };
  return diff;
}

/**
 * The same function without nodes and edges: diffing against it lists all of them as added or
 * removed, and nothing else, for a function that appears or disappears.
 */
export function emptied(fn: FunctionBody): FunctionBody {
  return { ...fn, nodes: [], edges: [] };
}
