import { z } from 'zod';
import { FunctionId } from './resource.ts';
import { isStorable, Text, UNSTORABLE_MESSAGE } from './text.ts';

// The program model as it travels on the wire (docs/protocol.md, "Content hashes" and `edit.apply`). Everything a client sends
// here ends up in a content hash that other languages recompute, so the schemas only let through
// values that RFC 8785 can serialize and that survive a JSON round trip unchanged.

const MAX_JSON_DEPTH = 64;

/**
 * What a check accepts: `input` is what a client may send (rule 7 of docs/cluster.md: text every
 * store can hold); `stored` is what loading accepts, U+0000 included, which stores written before
 * it was refused may hold (a lone surrogate was always refused: it cannot be hashed).
 */
type Strictness = 'input' | 'stored';

interface JsonProblem {
  path: Array<string | number>;
  message: string;
}

function textProblem(s: string, strictness: Strictness): string | undefined {
  if (strictness === 'input') return isStorable(s) ? undefined : UNSTORABLE_MESSAGE;
  return hasLoneSurrogate(s) ? 'must not contain a lone surrogate' : undefined;
}

/** Why `value` is not plain, hashable JSON, and where, or undefined when it is. */
function jsonProblem(value: unknown, path: Array<string | number>, strictness: Strictness): JsonProblem | undefined {
  if (path.length > MAX_JSON_DEPTH) return { path, message: `nested deeper than ${MAX_JSON_DEPTH} levels` };
  if (value === null || typeof value === 'boolean') return undefined;
  if (typeof value === 'number')
    return Number.isFinite(value) ? undefined : { path, message: 'numbers must be finite' };
  if (typeof value === 'string') {
    const problem = textProblem(value, strictness);
    return problem === undefined ? undefined : { path, message: `strings ${problem}` };
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const problem = jsonProblem(item, [...path, index], strictness);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) {
      // zod's JSON schema silently drops a "__proto__" key, which would make the stored content
      // (and its hash) differ from what the client sent: refuse it openly instead.
      if (key === '__proto__') return { path, message: 'the key "__proto__" is not allowed' };
      const problem = textProblem(key, strictness);
      if (problem !== undefined) return { path: [...path, key], message: `keys ${problem}` };
      const inner = jsonProblem(item, [...path, key], strictness);
      if (inner !== undefined) return inner;
    }
    return undefined;
  }
  return { path, message: 'not a JSON value' };
}

function hasLoneSurrogate(s: string): boolean {
  // With the u flag paired surrogates form one code point, so only unpaired ones match.
  return /\p{Cs}/u.test(s);
}

function checkedJson(strictness: Strictness): z.ZodUnknown {
  return z.unknown().superRefine((value, ctx) => {
    const problem = jsonProblem(value, [], strictness);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem.message, path: problem.path });
  });
}

const JSON_TEXT = 'strings and keys without U+0000 or lone surrogates';

export const JsonValue = checkedJson('input').pipe(z.json()).describe(`Any JSON value; ${JSON_TEXT}`);
export const JsonObject = checkedJson('input')
  .pipe(z.record(z.string(), z.json()))
  .describe(`A JSON object; ${JSON_TEXT}`);

const NonNegativeId = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Text as loading accepts it (see Strictness). */
const StoredText = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    .refine((s) => !hasLoneSurrogate(s), 'must not contain a lone surrogate');

export const NodeId = NonNegativeId.describe('Node id, chosen by the client, unique within its function');
export const EdgeId = NonNegativeId.describe('Edge id, chosen by the client, unique within its function');
export const NodeOp = Text(1, 64).describe('What the node does, such as "const", "add" or "call"');
export const FunctionName = Text(1, 128).describe('Function name, unique within its program');
export const Signature = JsonValue.describe(
  `Free-form JSON describing the function signature; absent and null hash alike; ${JSON_TEXT}`,
);
export const NodeAttrs = JsonObject.describe(`Node attributes; absent means {}; ${JSON_TEXT}`);

export const Node = z
  .strictObject({ id: NodeId, op: NodeOp, attrs: NodeAttrs.optional() })
  .describe('A node of a function');

export const Port = z
  .strictObject({
    node: NodeId.describe('Id of a node of the same function'),
    port: NonNegativeId.describe('Port number on that node'),
  })
  .describe('One end of an edge');

export const Edge = z
  .strictObject({ id: EdgeId, from: Port, to: Port })
  .describe('A directed edge between two nodes of the same function');

export const FunctionBody = z
  .strictObject({
    id: FunctionId,
    name: FunctionName,
    signature: Signature.optional(),
    nodes: z.array(Node).describe('Nodes sorted by id'),
    edges: z.array(Edge).describe('Edges sorted by id'),
  })
  .describe('A function in full');

const StoredNode = z.strictObject({
  id: NodeId,
  op: StoredText(1, 64),
  attrs: checkedJson('stored').pipe(z.record(z.string(), z.json())).optional(),
});

/** A function as loading accepts it from a store, and as undo and restore bring it back (see Strictness). */
export const StoredFunctionBody = z.strictObject({
  id: FunctionId,
  name: StoredText(1, 128),
  signature: checkedJson('stored').pipe(z.json()).optional(),
  nodes: z.array(StoredNode),
  edges: z.array(Edge),
});

export const FunctionRef = z
  .union([
    FunctionId.describe('An existing function, by id'),
    FunctionName.describe('A function added earlier in the same edit, by its current name'),
  ])
  .describe('The function an operation applies to');

export const AddFunctionOp = z
  .strictObject({
    op: z.literal('addFunction'),
    name: FunctionName,
    signature: Signature.optional(),
    nodes: z.array(Node).optional().describe('Its nodes from the start (default none): a whole function in one op'),
    edges: z.array(Edge).optional().describe('Its edges from the start (default none), between those nodes'),
  })
  .describe('Add a function; the server assigns its id (listed in the result under "created")');
export const RemoveFunctionOp = z
  .strictObject({ op: z.literal('removeFunction'), function: FunctionRef })
  .describe('Remove a function; its id is never reused');
export const RenameFunctionOp = z
  .strictObject({ op: z.literal('renameFunction'), function: FunctionRef, name: FunctionName })
  .describe('Rename a function');
export const AddNodeOp = z
  .strictObject({ op: z.literal('addNode'), function: FunctionRef, node: Node })
  .describe('Add a node with a new id');
export const UpdateNodeOp = z
  .strictObject({
    op: z.literal('updateNode'),
    function: FunctionRef,
    node: z
      .strictObject({ id: NodeId, op: NodeOp.optional(), attrs: NodeAttrs.optional() })
      .describe('The node id and the fields to replace: attrs, when given, replaces all attributes'),
  })
  .describe('Change the op and/or the attributes of a node');
export const RemoveNodeOp = z
  .strictObject({ op: z.literal('removeNode'), function: FunctionRef, node: NodeId })
  .describe('Remove a node and every edge attached to it');
export const AddEdgeOp = z
  .strictObject({ op: z.literal('addEdge'), function: FunctionRef, edge: Edge })
  .describe('Add an edge with a new id between two existing nodes of the function');
export const RemoveEdgeOp = z
  .strictObject({ op: z.literal('removeEdge'), function: FunctionRef, edge: EdgeId })
  .describe('Remove an edge');

export const EditOp = z
  .discriminatedUnion('op', [
    AddFunctionOp,
    RemoveFunctionOp,
    RenameFunctionOp,
    AddNodeOp,
    UpdateNodeOp,
    RemoveNodeOp,
    AddEdgeOp,
    RemoveEdgeOp,
  ])
  .describe('One edit operation');

export const EditOps = z.array(EditOp).min(1).max(1000).describe('Operations applied in order, all or none');

export const NodeChange = z
  .strictObject({ id: NodeId, before: Node, after: Node })
  .describe('A node whose op or attrs changed');
export const EdgeChange = z
  .strictObject({ id: EdgeId, before: Edge, after: Edge })
  .describe('An edge whose ends changed');

const Change = <T extends z.ZodType>(value: T) => z.strictObject({ before: value, after: value });

export const FunctionDiff = z
  .strictObject({
    name: Change(FunctionName).optional().describe('Present when the name changed'),
    signature: Change(JsonValue).optional().describe('Present when the signature changed (null: none)'),
    nodes: z.strictObject({ added: z.array(Node), removed: z.array(Node), modified: z.array(NodeChange) }),
    edges: z.strictObject({ added: z.array(Edge), removed: z.array(Edge), modified: z.array(EdgeChange) }),
  })
  .describe('Added, removed and modified nodes and edges between two versions of a function, each list sorted by id');

export type JsonValue = z.infer<typeof JsonValue>;
export type JsonObject = z.infer<typeof JsonObject>;
export type Node = z.infer<typeof Node>;
export type Port = z.infer<typeof Port>;
export type Edge = z.infer<typeof Edge>;
export type FunctionBody = z.infer<typeof FunctionBody>;
export type StoredFunctionBody = z.infer<typeof StoredFunctionBody>;
export type FunctionRef = z.infer<typeof FunctionRef>;
export type AddFunctionOp = z.infer<typeof AddFunctionOp>;
export type RemoveFunctionOp = z.infer<typeof RemoveFunctionOp>;
export type RenameFunctionOp = z.infer<typeof RenameFunctionOp>;
export type AddNodeOp = z.infer<typeof AddNodeOp>;
export type UpdateNodeOp = z.infer<typeof UpdateNodeOp>;
export type RemoveNodeOp = z.infer<typeof RemoveNodeOp>;
export type AddEdgeOp = z.infer<typeof AddEdgeOp>;
export type RemoveEdgeOp = z.infer<typeof RemoveEdgeOp>;
export type EditOp = z.infer<typeof EditOp>;
export type NodeChange = z.infer<typeof NodeChange>;
export type EdgeChange = z.infer<typeof EdgeChange>;
export type FunctionDiff = z.infer<typeof FunctionDiff>;
