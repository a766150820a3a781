import type { FunctionBody } from '../protocol/program.ts';
import { diffFunctions } from './diff.ts';
import type { RestoreFunctionOp, ServiceOp } from './ops.ts';

/** One function going from one state to another; null means "does not exist". */
export interface Transition {
  id: number;
  from: FunctionBody | null;
  to: FunctionBody | null;
}

/**
 * Ops that take every function from its `from` state to its `to` state, for undo, redo and
 * restore. They are ordinary fine-grained ops, so applied to a state that has moved on since
 * `from` they change only what the original revision changed (like `git revert`), and they fail
 * with INVALID_EDIT where later edits make that impossible.
 *
 * Signatures are only ever set by addFunction and restoreFunction, so a function that exists in
 * both states has the same signature in both: no op is needed (or exists) for it.
 */
export function transitionOps(transitions: readonly Transition[], namesInUse: ReadonlySet<string>): ServiceOp[] {
  const sorted = [...transitions].sort((a, b) => a.id - b.id);
  const removals: ServiceOp[] = [];
  const contents: ServiceOp[] = [];
  const renames: Array<{ id: number; from: string; to: string }> = [];
  const restores: RestoreFunctionOp[] = [];

  for (const { id, from, to } of sorted) {
    if (from !== null && to === null) {
      removals.push({ op: 'removeFunction', function: id });
    } else if (from === null && to !== null) {
      restores.push({
        op: 'restoreFunction',
        function: id,
        name: to.name,
        ...(to.signature === undefined ? {} : { signature: to.signature }),
        nodes: to.nodes.map((n) => ({ ...n })),
        edges: to.edges.map((e) => ({ id: e.id, from: { ...e.from }, to: { ...e.to } })),
      });
    } else if (from !== null && to !== null) {
      if (from.name !== to.name) renames.push({ id, from: from.name, to: to.name });
      contents.push(...contentOps(id, from, to));
    }
  }

  // Renames that swap or rotate names would collide one at a time: park them on free names first.
  const targets = new Set([...renames.map((r) => r.to), ...restores.map((r) => r.name)]);
  const parked: ServiceOp[] = [];
  if (renames.some((r) => targets.has(r.from))) {
    const taken = new Set([...namesInUse, ...targets, ...renames.map((r) => r.from)]);
    for (const r of renames) {
      let temp = `~${r.id}`;
      while (taken.has(temp)) temp += '~';
      taken.add(temp);
      parked.push({ op: 'renameFunction', function: r.id, name: temp });
    }
  }
  const finalRenames: ServiceOp[] = renames.map((r) => ({ op: 'renameFunction', function: r.id, name: r.to }));
  return [...removals, ...parked, ...contents, ...finalRenames, ...restores];
}

function contentOps(id: number, from: FunctionBody, to: FunctionBody): ServiceOp[] {
  const d = diffFunctions(from, to);
  // Edges go before nodes on the way out and after them on the way in, so every edge op finds
  // its ends; a modified edge has no update op, so it is removed and added again.
  return [
    ...[...d.edges.removed, ...d.edges.modified]
      .sort((a, b) => a.id - b.id)
      .map((e): ServiceOp => ({ op: 'removeEdge', function: id, edge: e.id })),
    ...d.nodes.removed.map((n): ServiceOp => ({ op: 'removeNode', function: id, node: n.id })),
    ...d.nodes.modified.map(
      (c): ServiceOp => ({
        op: 'updateNode',
        function: id,
        node: { id: c.id, op: c.after.op, attrs: c.after.attrs ?? {} },
      }),
    ),
    ...d.nodes.added.map(
      (n): ServiceOp => ({ op: 'addNode', function: id, node: { id: n.id, op: n.op, attrs: n.attrs ?? {} } }),
    ),
    ...[...d.edges.added, ...d.edges.modified.map((c) => c.after)]
      .sort((a, b) => a.id - b.id)
      .map(
        (e): ServiceOp => ({ op: 'addEdge', function: id, edge: { id: e.id, from: { ...e.from }, to: { ...e.to } } }),
      ),
  ];
}
