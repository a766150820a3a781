/**
 * What the bridge knows of its agent beyond the session: the hash of what it last read (or wrote)
 * of each function, when it last called a tool, and what happened since its last call.
 */
export class AgentState {
  private readonly hashes = new Map<string, string>();
  private lastCallAt: number;
  private notices: string[] = [];

  constructor(
    /** After this long without a tool call the agent counts as idle: its leases are left to run out (0: always). */
    private readonly idleReleaseMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.lastCallAt = now();
  }

  touch(): void {
    this.lastCallAt = this.now();
  }

  get active(): boolean {
    return this.now() - this.lastCallAt < this.idleReleaseMs;
  }

  remember(program: string, functionId: number, hash: string): void {
    this.hashes.set(`${program}\u0000${functionId}`, hash);
  }

  hashOf(program: string, functionId: number): string | undefined {
    return this.hashes.get(`${program}\u0000${functionId}`);
  }

  notice(text: string): void {
    this.notices.push(text);
  }

  /** What happened since the last call, once. */
  drain(): string[] {
    const out = this.notices;
    this.notices = [];
    return out;
  }
}
