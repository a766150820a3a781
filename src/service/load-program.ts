import { StoredFunctionBody } from '../protocol/program.ts';
import { functionHash } from './hash.ts';
import { makeBody, newProgramState } from './model.ts';
import type { ProgramState } from './model.ts';
import { StoreError } from './store.ts';
import type { LoadedProgram } from './store.ts';

/** Rebuilds a program from the store, refusing anything that does not check out. */
export function restoreProgram(loaded: LoadedProgram, location: string): ProgramState {
  const state = newProgramState(loaded.name, loaded.revision, loaded.nextFunctionId);
  for (const v of loaded.functions) {
    const where = `program ${loaded.name}, function ${v.functionId} version ${v.version}`;
    const parsed = StoredFunctionBody.safeParse(v.body);
    if (!parsed.success || parsed.data.id !== v.functionId || v.functionId >= loaded.nextFunctionId) {
      throw new StoreError(location, `is corrupt: ${where} has a malformed body`);
    }
    const body = makeBody(
      parsed.data.id,
      parsed.data.name,
      parsed.data.signature,
      parsed.data.nodes,
      parsed.data.edges,
    );
    if (functionHash(body) !== v.hash)
      throw new StoreError(location, `is corrupt: ${where} does not match its stored hash`);
    if (state.idsByName.has(body.name)) throw new StoreError(location, `is corrupt: ${where} has a duplicate name`);
    state.functions.set(v.functionId, { body, hash: v.hash, version: v.version });
    state.idsByName.set(body.name, v.functionId);
  }
  return state;
}
