/** Who watches which function: program -> function id -> session ids, and the reverse for cleanup. */
export class Watches {
  private readonly byFunction = new Map<string, Map<number, Set<string>>>();
  private readonly bySession = new Map<string, Map<string, Set<number>>>();

  watch(sessionId: string, program: string, functions: readonly number[]): number[] {
    const fns = this.byProgram(program);
    const mine = this.sessionProgram(sessionId, program);
    for (const f of functions) {
      let set = fns.get(f);
      if (set === undefined) {
        set = new Set();
        fns.set(f, set);
      }
      set.add(sessionId);
      mine.add(f);
    }
    return [...mine].sort((a, b) => a - b);
  }

  unwatch(sessionId: string, program: string, functions: readonly number[]): number[] {
    const mine = this.bySession.get(sessionId)?.get(program);
    for (const f of functions) {
      this.byFunction.get(program)?.get(f)?.delete(sessionId);
      mine?.delete(f);
    }
    return mine === undefined ? [] : [...mine].sort((a, b) => a - b);
  }

  watchers(program: string, fn: number): ReadonlySet<string> {
    return this.byFunction.get(program)?.get(fn) ?? EMPTY;
  }

  /** A removed function (or program) keeps no watchers: ids are never reused, so they would dangle. */
  forget(program: string, fn?: number): void {
    const fns = this.byFunction.get(program);
    if (fns === undefined) return;
    const ids = fn === undefined ? [...fns.keys()] : [fn];
    for (const id of ids) {
      for (const s of fns.get(id) ?? []) this.bySession.get(s)?.get(program)?.delete(id);
      fns.delete(id);
    }
  }

  dropSession(sessionId: string): void {
    const mine = this.bySession.get(sessionId);
    if (mine === undefined) return;
    for (const [program, fns] of mine) for (const f of fns) this.byFunction.get(program)?.get(f)?.delete(sessionId);
    this.bySession.delete(sessionId);
  }

  private byProgram(program: string): Map<number, Set<string>> {
    let m = this.byFunction.get(program);
    if (m === undefined) {
      m = new Map();
      this.byFunction.set(program, m);
    }
    return m;
  }

  private sessionProgram(sessionId: string, program: string): Set<number> {
    let m = this.bySession.get(sessionId);
    if (m === undefined) {
      m = new Map();
      this.bySession.set(sessionId, m);
    }
    let s = m.get(program);
    if (s === undefined) {
      s = new Set();
      m.set(program, s);
    }
    return s;
  }
}

const EMPTY: ReadonlySet<string> = new Set();
