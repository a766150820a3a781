import { isFunction, isPath, isStructure, type Resource } from '../protocol/resource.ts';

/** Resources of one program as the lock methods take them. */
export function selector(
  program: string,
  resources: readonly Resource[],
): { program: string; functions?: number[]; structure?: true; paths?: string[] } {
  const functions = resources.flatMap((r) => (isFunction(r) ? [r.function] : []));
  const paths = resources.flatMap((r) => (isPath(r) ? [r.path] : []));
  return {
    program,
    ...(functions.length > 0 ? { functions } : {}),
    ...(paths.length > 0 ? { paths } : {}),
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
