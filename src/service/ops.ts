import { z } from 'zod';
import { FunctionId } from '../protocol/resource.ts';
import { EditOp, StoredFunctionBody } from '../protocol/program.ts';

/**
 * Bringing a removed function back under its own id (undo of a removal, restore to a checkpoint)
 * cannot be said with wire ops: there an integer always names an existing function and
 * addFunction always takes a fresh id. So undo, redo and restore produce this internal op as well,
 * and the service accepts the superset, `ServiceOp`. It never appears in the wire schema: clients
 * cannot resurrect an arbitrary id or forge a body, only the history commands can.
 */
export const RestoreFunctionOp = z.strictObject({
  op: z.literal('restoreFunction'),
  function: FunctionId,
  // What was stored once, given back as it was (protocol/program.ts, Strictness).
  name: StoredFunctionBody.shape.name,
  signature: StoredFunctionBody.shape.signature,
  nodes: StoredFunctionBody.shape.nodes,
  edges: StoredFunctionBody.shape.edges,
});

export const ServiceOp = z.discriminatedUnion('op', [...EditOp.options, RestoreFunctionOp]);

export type RestoreFunctionOp = z.infer<typeof RestoreFunctionOp>;
export type ServiceOp = z.infer<typeof ServiceOp>;
