import { isStructure, type Resource } from '../protocol/resource.ts';

/** Resources of one program as the lock methods take them. */
export function selector(
  program: string,
  resources: readonly Resource[],
): { program: string; functions?: number[]; structure?: true } {
  const functions = resources.flatMap((r) => (isStructure(r) ? [] : [r.function]));
  return {
    program,
    ...(functions.length > 0 ? { functions } : {}),
    ...(resources.some(isStructure) ? { structure: true as const } : {}),
  };
}

/** Resources grouped by program: each lock call names one program. */
export function byProgram(resources: readonly Resource[]): Map<string, Resource[]> {
  const out = new Map<string, Resource[]>();
  for (const r of resources) {
    const list = out.get(r.program);
    if (list === undefined) out.set(r.program, [r]);
    else list.push(r);
  }
  return out;
}
