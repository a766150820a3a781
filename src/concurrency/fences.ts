/** Fencing tokens: strictly increasing per program. The service persists them across restarts. */
export interface FenceSource {
  next(program: string): number;
}

/** In-memory fences; `start` gives, per program, the last token already issued. */
export function memoryFences(start: Record<string, number> = {}): FenceSource {
  const last = new Map<string, number>(Object.entries(start));
  return {
    next(program) {
      const fence = (last.get(program) ?? 0) + 1;
      last.set(program, fence);
      return fence;
    },
  };
}
