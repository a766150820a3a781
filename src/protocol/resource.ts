import { z } from 'zod';

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
export const Resource = z.union([FunctionResource, StructureResource]).describe('A lockable resource');

export type FunctionResource = z.infer<typeof FunctionResource>;
export type StructureResource = z.infer<typeof StructureResource>;
export type Resource = z.infer<typeof Resource>;

export const LockMode = z.enum(['read', 'write']);
export type LockMode = z.infer<typeof LockMode>;

export function isStructure(r: Resource): r is StructureResource {
  return 'structure' in r;
}

/** A string key, unique per resource, for maps. NUL cannot occur in a program name. */
export function resourceKey(r: Resource): string {
  return isStructure(r) ? `${r.program}\u0000s` : `${r.program}\u0000${r.function}`;
}

/** Canonical order: by program, the structure first, then functions by id. */
export function compareResources(a: Resource, b: Resource): number {
  if (a.program !== b.program) return a.program < b.program ? -1 : 1;
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
  return isStructure(r) ? { program: r.program, structure: true } : { program: r.program, function: r.function };
}

export function formatResource(r: Resource): string {
  return isStructure(r) ? `${r.program}/structure` : `${r.program}/f${r.function}`;
}
