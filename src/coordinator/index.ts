import type { Clock } from '../concurrency/index.ts';
import { Coordinator, type CoordinatorOptions, type Limits, type Sink } from './coordinator.ts';
import type { CallHooks } from './call-context.ts';
import { Conversation } from './conversation.ts';

// The coordinator's public entry: all that the transport and the server may use. Its parts (lock
// core, sessions, programs, event log) stay behind it; test/layers.test.ts holds everyone else to
// this file.

export type { Clock } from '../concurrency/index.ts';
export type { CallHooks } from './call-context.ts';
export type { Conversation } from './conversation.ts';
export type { Coordinator, CoordinatorOptions, DisconnectReason, Limits, Sink } from './coordinator.ts';
export { TokenError, Tokens } from './tokens.ts';

export interface Health {
  status: 'ok' | 'draining' | 'degraded';
  sessions: number;
  /** The store answered. */
  store: boolean;
}

export class CoordinatorPort {
  readonly #c: Coordinator;
  readonly #serving: (() => boolean) | undefined;

  constructor(options: CoordinatorOptions) {
    this.#c = new Coordinator(options);
    this.#serving = options.serving;
  }

  get limits(): Readonly<Limits> {
    return this.#c.options.limits;
  }

  /** Shutting down: no new sessions. */
  get draining(): boolean {
    return this.#c.draining;
  }

  /**
   * docs/cluster.md rule 2, for the transport: false once this node may no longer reply (see
   * CoordinatorOptions.serving). Synchronous; asked before every frame written.
   */
  serving(): boolean {
    return this.#serving?.() ?? true;
  }

  /** The coordinator's clock, for the transport's rate buckets and hello timeouts. */
  get clock(): Clock {
    return this.#c.clock;
  }

  /**
   * A new connection: `sink` takes its pushes, `hooks` serve its calls, `onSession` is told when
   * it gets a session and when it has none again (see Conversation).
   */
  open(sink: Sink, hooks: CallHooks, onSession: (open: boolean) => void): Conversation {
    return new Conversation(this.#c, sink, hooks, onSession);
  }

  async health(): Promise<Health> {
    const c = this.#c;
    const store = await c.programs.ping();
    return {
      status: c.draining ? 'draining' : store ? 'ok' : 'degraded',
      sessions: c.sessions.size,
      store,
    };
  }

  /** Prometheus text. */
  async metrics(): Promise<{ contentType: string; text: string }> {
    const { registry } = this.#c.metrics;
    return { contentType: registry.contentType, text: await registry.metrics() };
  }

  /** Tells every session the server is draining, then closes their connections (1001). */
  shutdown(reason: string): void {
    this.#c.shutdown(reason);
  }

  close(): void {
    this.#c.close();
  }

  /** For tests only: the parts, to observe or provoke what the wire cannot show. */
  inspect(): Coordinator {
    return this.#c;
  }
}
