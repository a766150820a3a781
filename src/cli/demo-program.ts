import { isLockstepError, type LockstepClient } from '../client/index.ts';
import type { EditOp, FunctionBody } from '../protocol/program.ts';
import type { Random } from './random.ts';

/** The functions the demo agents work on: a toy compiler pipeline. */
export const DEMO_FUNCTIONS = ['lex', 'parse', 'resolve', 'typecheck', 'optimize', 'emit'] as const;

const NODE_OPS = ['const', 'add', 'mul', 'call', 'load', 'store', 'branch'] as const;
/** Functions are kept small so the dashboard stays readable however long the demo runs. */
const MAX_NODES = 8;

export interface DemoFunction {
  id: number;
  name: string;
}

/** Creates the program and any missing demo function (under the structure lock); returns them all. */
export async function prepareProgram(client: LockstepClient, program: string): Promise<DemoFunction[]> {
  try {
    await client.program.create({ name: program });
  } catch (err) {
    if (!isLockstepError(err, 'CONFLICT')) throw err;
  }
  const existing = new Set((await client.program.get({ program })).functions.map((f) => f.name));
  const missing = DEMO_FUNCTIONS.filter((name) => !existing.has(name));
  if (missing.length > 0) {
    await client.withLocks(
      { program, structure: true, mode: 'write', waitTimeoutMs: 10_000, description: 'demo: set up functions' },
      async (lock) => {
        // Another demo may have added some meanwhile: look again under the lock.
        const now = new Set((await client.program.get({ program })).functions.map((f) => f.name));
        const ops: EditOp[] = missing
          .filter((name) => !now.has(name))
          .flatMap((name): EditOp[] => [
            { op: 'addFunction', name, signature: { params: ['input'], returns: 'output' } },
            { op: 'addNode', function: name, node: { id: 1, op: 'param', attrs: { name: 'input' } } },
          ]);
        if (ops.length > 0) await client.edit.apply({ program, ops, fences: lock.fences });
      },
    );
  }
  const { functions } = await client.program.get({ program });
  return functions
    .filter((f) => (DEMO_FUNCTIONS as readonly string[]).includes(f.name))
    .map((f) => ({ id: f.id, name: f.name }));
}

/** A plausible small change to one function, given its current body. */
export function mutation(fn: FunctionBody, rnd: Random, author: string): EditOp[] {
  const nodes = fn.nodes;
  const last = nodes[nodes.length - 1];
  const nextNode = nodes.reduce((m, n) => Math.max(m, n.id), 0) + 1;
  const nextEdge = fn.edges.reduce((m, e) => Math.max(m, e.id), 0) + 1;
  const first = nodes[0];
  if (nodes.length >= MAX_NODES && first !== undefined) return [{ op: 'removeNode', function: fn.id, node: first.id }];
  if (last !== undefined && rnd.next() < 0.35) {
    const target = rnd.pick(nodes);
    return [
      {
        op: 'updateNode',
        function: fn.id,
        node: { id: target.id, attrs: { ...(target.attrs ?? {}), tuned: rnd.int(1, 99), by: author } },
      },
    ];
  }
  const ops: EditOp[] = [
    {
      op: 'addNode',
      function: fn.id,
      node: { id: nextNode, op: rnd.pick(NODE_OPS), attrs: { value: rnd.int(0, 999), by: author } },
    },
  ];
  if (last !== undefined)
    ops.push({
      op: 'addEdge',
      function: fn.id,
      edge: { id: nextEdge, from: { node: last.id, port: 0 }, to: { node: nextNode, port: 0 } },
    });
  return ops;
}
