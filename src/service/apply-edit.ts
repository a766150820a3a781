import { LockstepError } from '../protocol/errors.ts';
import type { Edge, FunctionBody, FunctionRef, Node } from '../protocol/program.ts';
import { functionHash } from './hash.ts';
import { toBody, toWorking } from './model.ts';
import type { ProgramState, StoredFunction, WorkingFunction } from './model.ts';
import { ServiceOp } from './ops.ts';

/** One function whose content or existence an edit changed. */
export interface FunctionChange {
  id: number;
  before: StoredFunction | null;
  after: { body: FunctionBody; hash: string } | null;
}

export interface AppliedEdit {
  ops: ServiceOp[];
  nextFunctionId: number;
  /** By id. Functions an op touched without changing their hash are left out (no version bump). */
  changes: FunctionChange[];
  /** Functions the edit added that still exist at its end, in the order they were added. */
  created: Array<{ name: string; id: number }>;
}

class OpFailure extends Error {}

function fail(reason: string): never {
  throw new OpFailure(reason);
}

function invalidEdit(opIndex: number, op: string | undefined, reason: string): LockstepError {
  const where = op === undefined ? `op ${opIndex}` : `op ${opIndex} (${op})`;
  return new LockstepError('INVALID_EDIT', `${where}: ${reason}`, { opIndex, reason });
}

/**
 * Validates and applies `ops` to working copies of the functions they touch; the program state is
 * never modified, so a rejected edit leaves no trace and the caller commits the result or nothing.
 * Throws INVALID_EDIT naming the first op that cannot apply.
 */
export function applyOps(program: ProgramState, input: readonly unknown[]): AppliedEdit {
  const edit = new EditInProgress(program);
  const ops: ServiceOp[] = [];
  input.forEach((raw, opIndex) => {
    const parsed = ServiceOp.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
      const name =
        typeof raw === 'object' && raw !== null && 'op' in raw && typeof raw.op === 'string' ? raw.op : undefined;
      throw invalidEdit(opIndex, name, `${path}${issue?.message ?? 'malformed operation'}`);
    }
    try {
      edit.apply(parsed.data);
    } catch (err) {
      if (err instanceof OpFailure) throw invalidEdit(opIndex, parsed.data.op, err.message);
      throw err;
    }
    ops.push(parsed.data);
  });
  return edit.finish(ops);
}

class EditInProgress {
  private readonly work = new Map<number, WorkingFunction | null>();
  private readonly addedHere = new Set<number>();
  private names: Map<string, number> | undefined;
  private nextId: number;

  constructor(private readonly program: ProgramState) {
    this.nextId = program.nextFunctionId;
  }

  apply(op: ServiceOp): void {
    switch (op.op) {
      case 'addFunction': {
        this.claimName(op.name);
        const id = this.nextId++;
        const fn: WorkingFunction = {
          id,
          name: op.name,
          signature: op.signature ?? undefined,
          nodes: new Map(),
          edges: new Map(),
        };
        addBody(fn, op.nodes ?? [], op.edges ?? []);
        this.work.set(id, fn);
        this.nameIndex().set(op.name, id);
        this.addedHere.add(id);
        return;
      }
      case 'removeFunction': {
        const fn = this.resolve(op.function);
        this.work.set(fn.id, null);
        this.nameIndex().delete(fn.name);
        return;
      }
      case 'renameFunction': {
        const fn = this.resolve(op.function);
        if (fn.name === op.name) return;
        this.claimName(op.name);
        this.nameIndex().delete(fn.name);
        this.nameIndex().set(op.name, fn.id);
        fn.name = op.name;
        return;
      }
      case 'addNode': {
        const fn = this.resolve(op.function);
        if (fn.nodes.has(op.node.id)) fail(`node ${op.node.id} already exists in function ${label(fn)}`);
        fn.nodes.set(op.node.id, { id: op.node.id, op: op.node.op, attrs: op.node.attrs ?? {} });
        return;
      }
      case 'updateNode': {
        const fn = this.resolve(op.function);
        const node = fn.nodes.get(op.node.id) ?? fail(`unknown node ${op.node.id} in function ${label(fn)}`);
        if (op.node.op === undefined && op.node.attrs === undefined) fail('updateNode needs op or attrs');
        fn.nodes.set(node.id, { id: node.id, op: op.node.op ?? node.op, attrs: op.node.attrs ?? node.attrs ?? {} });
        return;
      }
      case 'removeNode': {
        const fn = this.resolve(op.function);
        if (!fn.nodes.delete(op.node)) fail(`unknown node ${op.node} in function ${label(fn)}`);
        for (const edge of [...fn.edges.values()]) {
          if (edge.from.node === op.node || edge.to.node === op.node) fn.edges.delete(edge.id);
        }
        return;
      }
      case 'addEdge': {
        const fn = this.resolve(op.function);
        addEdge(fn, op.edge);
        return;
      }
      case 'removeEdge': {
        const fn = this.resolve(op.function);
        if (!fn.edges.delete(op.edge)) fail(`unknown edge ${op.edge} in function ${label(fn)}`);
        return;
      }
      case 'restoreFunction': {
        const id = op.function;
        if (id >= this.program.nextFunctionId) fail(`function ${id} never existed`);
        if (this.current(id) !== null) fail(`function ${id} exists`);
        this.claimName(op.name);
        const fn: WorkingFunction = { id, name: op.name, signature: op.signature, nodes: new Map(), edges: new Map() };
        addBody(fn, op.nodes, op.edges);
        this.work.set(id, fn);
        this.nameIndex().set(op.name, id);
        return;
      }
    }
  }

  finish(ops: ServiceOp[]): AppliedEdit {
    const changes: FunctionChange[] = [];
    for (const [id, fn] of [...this.work].sort(([a], [b]) => a - b)) {
      const before = this.program.functions.get(id) ?? null;
      if (fn === null) {
        if (before !== null) changes.push({ id, before, after: null });
        continue;
      }
      const body = toBody(fn);
      const hash = functionHash(body);
      // An op that leaves the content as it was (same hash) is not a change: no new version.
      if (before === null || before.hash !== hash) changes.push({ id, before, after: { body, hash } });
    }
    const created = [...this.addedHere].flatMap((id) => {
      const fn = this.work.get(id);
      return fn == null ? [] : [{ name: fn.name, id }];
    });
    return { ops, nextFunctionId: this.nextId, changes, created };
  }

  private current(id: number): WorkingFunction | null {
    const touched = this.work.get(id);
    if (touched !== undefined) return touched;
    const stored = this.program.functions.get(id);
    if (stored === undefined) return null;
    const copy = toWorking(stored.body);
    this.work.set(id, copy);
    return copy;
  }

  private resolve(ref: FunctionRef): WorkingFunction {
    if (typeof ref === 'number') {
      return this.current(ref) ?? fail(`unknown function ${ref}`);
    }
    const id = this.nameIndex().get(ref);
    if (id === undefined || !this.addedHere.has(id)) {
      fail(`"${ref}" does not name a function added earlier in this edit (existing functions are referred to by id)`);
    }
    return this.current(id) ?? fail(`unknown function "${ref}"`);
  }

  private claimName(name: string): void {
    const holder = this.nameIndex().get(name);
    if (holder !== undefined) fail(`a function named "${name}" already exists (id ${holder})`);
  }

  /** Copied on the first structural op only, so plain node edits cost nothing per function. */
  private nameIndex(): Map<string, number> {
    this.names ??= new Map(this.program.idsByName);
    return this.names;
  }
}

/** A new function's nodes, then its edges between them (addFunction with a body, restoreFunction). */
function addBody(fn: WorkingFunction, nodes: readonly Node[], edges: readonly Edge[]): void {
  for (const node of nodes) {
    if (fn.nodes.has(node.id)) fail(`duplicate node ${node.id} in function ${label(fn)}`);
    fn.nodes.set(node.id, { id: node.id, op: node.op, attrs: node.attrs ?? {} });
  }
  for (const edge of edges) addEdge(fn, edge);
}

function addEdge(fn: WorkingFunction, edge: Edge): void {
  if (fn.edges.has(edge.id)) fail(`edge ${edge.id} already exists in function ${label(fn)}`);
  for (const end of ['from', 'to'] as const) {
    if (!fn.nodes.has(edge[end].node)) {
      fail(`edge ${edge.id}: "${end}" node ${edge[end].node} is not a node of function ${label(fn)}`);
    }
  }
  fn.edges.set(edge.id, { id: edge.id, from: { ...edge.from }, to: { ...edge.to } });
}

function label(fn: WorkingFunction): string {
  return `${fn.id} ("${fn.name}")`;
}
