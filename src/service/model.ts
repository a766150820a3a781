import type { Edge, FunctionBody, JsonValue, Node } from '../protocol/program.ts';

/**
 * A committed function as the service keeps it in memory. The body is deeply frozen, so it can be
 * handed to callers and shared between versions without defensive copies.
 */
export interface StoredFunction {
  readonly body: FunctionBody;
  readonly hash: string;
  readonly version: number;
}

export interface ProgramState {
  readonly name: string;
  revision: number;
  /** Next id to hand out; ids are never reused, even those of removed functions. */
  nextFunctionId: number;
  readonly functions: Map<number, StoredFunction>;
  readonly idsByName: Map<string, number>;
}

/** A function being edited: maps keyed by node and edge id make every op O(1). */
export interface WorkingFunction {
  readonly id: number;
  name: string;
  readonly signature: JsonValue | undefined;
  readonly nodes: Map<number, Node>;
  readonly edges: Map<number, Edge>;
}

const byId = (a: { id: number }, b: { id: number }): number => a.id - b.id;

export function toWorking(body: FunctionBody): WorkingFunction {
  return {
    id: body.id,
    name: body.name,
    signature: body.signature,
    nodes: new Map(body.nodes.map((n) => [n.id, n])),
    edges: new Map(body.edges.map((e) => [e.id, e])),
  };
}

/** The canonical in-memory body: nodes and edges sorted by id, attrs always present, frozen. */
export function toBody(fn: WorkingFunction): FunctionBody {
  return makeBody(fn.id, fn.name, fn.signature, [...fn.nodes.values()], [...fn.edges.values()]);
}

export function makeBody(
  id: number,
  name: string,
  signature: JsonValue | undefined,
  nodes: readonly Node[],
  edges: readonly Edge[],
): FunctionBody {
  const body: FunctionBody = {
    id,
    name,
    // null and absent hash alike; keeping only "absent" makes equal hashes mean equal bodies.
    ...(signature === undefined || signature === null ? {} : { signature }),
    nodes: nodes.map((n) => ({ id: n.id, op: n.op, attrs: n.attrs ?? {} })).sort(byId),
    edges: edges
      .map((e) => ({
        id: e.id,
        from: { node: e.from.node, port: e.from.port },
        to: { node: e.to.node, port: e.to.port },
      }))
      .sort(byId),
  };
  return deepFreeze(body);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

export function newProgramState(name: string, revision: number, nextFunctionId: number): ProgramState {
  return { name, revision, nextFunctionId, functions: new Map(), idsByName: new Map() };
}
