import { z } from 'zod';
import { LockPath, comparePaths } from './path.ts';

// Program names appear in URLs, logs and resource keys; a tight alphabet keeps them unambiguous.
export const ProgramName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.-]+$/, 'program names use letters, digits, "_", "." and "-"')
  .describe('Program name');

export const FunctionId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER).describe('Function id');

export const FunctionResource = z.strictObject({ program: ProgramName, function: FunctionId });
export const StructureResource = z.strictObject({ program: ProgramName, structure: z.literal(true) });
export const PathResource = z.strictObject({ program: ProgramName, path: LockPath });
export const Resource = z.union([FunctionResource, StructureResource, PathResource]).describe('A lockable resource');

export type FunctionResource = z.infer<typeof FunctionResource>;
export type StructureResource = z.infer<typeof StructureResource>;
export type PathResource = z.infer<typeof PathResource>;
export type Resource = z.infer<typeof Resource>;

export const LockMode = z.enum(['read', 'write']);
export type LockMode = z.infer<typeof LockMode>;

export function isStructure(r: Resource): r is StructureResource {
  return 'structure' in r;
}

export function isPath(r: Resource): r is PathResource {
  return 'path' in r;
}

export function isFunction(r: Resource): r is FunctionResource {
  return 'function' in r;
}

/** A string key, unique per resource, for maps. NUL occurs in neither a program name nor a path. */
export function resourceKey(r: Resource): string {
  if (isStructure(r)) return `${r.program}\u0000s`;
  return isPath(r) ? pathKey(r.program, r.path) : `${r.program}\u0000${r.function}`;
}

/** resourceKey of the path resource {program, path}. */
export function pathKey(program: string, path: string): string {
  return `${program}\u0000/${path}`;
}

/** Canonical order: by program, the structure first, then functions by id, then paths (comparePaths). */
export function compareResources(a: Resource, b: Resource): number {
  if (a.program !== b.program) return a.program < b.program ? -1 : 1;
  if (isPath(a) || isPath(b)) {
    if (!isPath(a)) return -1;
    if (!isPath(b)) return 1;
    return comparePaths(a.path, b.path);
  }
  const ka = isStructure(a) ? 0 : a.function;
  const kb = isStructure(b) ? 0 : b.function;
  return ka - kb;
}

/** Sorted and de-duplicated, as every lock request is. */
export function normalizeResources(resources: readonly Resource[]): Resource[] {
  // One resource (most requests) is already sorted and unique: no map, no key, no sort.
  if (resources.length === 1) return [copyResource(resources[0]!)];
  const seen = new Map<string, Resource>();
  for (const r of resources) {
    const key = resourceKey(r);
    if (!seen.has(key)) seen.set(key, copyResource(r));
  }
  return [...seen.values()].sort(compareResources);
}

/** A resource with only its own fields, whatever else the object it came in had. */
function copyResource(r: Resource): Resource {
  if (isStructure(r)) return { program: r.program, structure: true };
  return isPath(r) ? { program: r.program, path: r.path } : { program: r.program, function: r.function };
}

export function formatResource(r: Resource): string {
  if (isStructure(r)) return `${r.program}/structure`;
  return isPath(r) ? `${r.program}:${r.path}` : `${r.program}/f${r.function}`;
}
