import { normalizeResources } from '../protocol/resource.ts';
import type { Resource } from '../protocol/resource.ts';
import type { ProgramState } from './model.ts';
import type { ServiceOp } from './ops.ts';
import type { LockNeed } from './service-types.ts';

/**
 * The write locks an edit needs, in canonical order. Ops on a function the same edit adds
 * (a string reference) need only the structure lock: nobody else can lock it yet. A function id
 * that does not exist needs no lock (none can be taken on it): the ops check then refuses the
 * edit with INVALID_EDIT naming the op, which tells the agent what is wrong, where a
 * LOCK_REQUIRED for an unlockable function would send it round in circles.
 */
export function requiredLocks(p: ProgramState, ops: readonly ServiceOp[]): LockNeed[] {
  const program = p.name;
  const fn = (id: number): Resource[] => (p.functions.has(id) ? [{ program, function: id }] : []);
  const structure: Resource = { program, structure: true };
  const needed: Resource[] = [];
  for (const op of ops) {
    switch (op.op) {
      case 'addFunction':
      case 'restoreFunction':
        needed.push(structure);
        break;
      case 'removeFunction':
      case 'renameFunction':
        needed.push(structure);
        if (typeof op.function === 'number') needed.push(...fn(op.function));
        break;
      default:
        if (typeof op.function === 'number') needed.push(...fn(op.function));
        else needed.push(structure);
    }
  }
  return normalizeResources(needed).map((resource) => ({ resource, mode: 'write' }));
}
