import { Outbox } from '../concurrency/index.ts';
import type { EventItem, Topic } from '../protocol/methods.ts';
import type { LoggedEvent } from './event-log.ts';

/** Who follows which event topics (events.subscribe), and the delivery of each logged event to them. */
export class Subscriptions {
  private readonly topics = new Map<string, Set<Topic>>();
  private readonly outbox = new Outbox();

  constructor(private readonly send: (sessionId: string, item: EventItem) => void) {}

  of(sessionId: string): ReadonlySet<Topic> {
    return this.topics.get(sessionId) ?? NO_TOPICS;
  }

  /** Adds topics to the session's; all it follows now. */
  add(sessionId: string, topics: readonly Topic[]): Set<Topic> {
    let set = this.topics.get(sessionId);
    if (set === undefined) {
      set = new Set();
      this.topics.set(sessionId, set);
    }
    for (const t of topics) set.add(t);
    return set;
  }

  /** Takes topics (undefined: all) from the session's; what it still follows. */
  remove(sessionId: string, topics: readonly Topic[] | undefined): Topic[] {
    const set = this.topics.get(sessionId);
    if (set === undefined) return [];
    if (topics === undefined) set.clear();
    else for (const t of topics) set.delete(t);
    return [...set];
  }

  /** The session is gone. */
  drop(sessionId: string): void {
    this.topics.delete(sessionId);
  }

  /**
   * Delivers events strictly in sequence order. Delivery can cause events of its own (a slow
   * consumer dropped mid-loop leaves, releasing its locks); those wait in the outbox until every
   * subscriber has the current one, instead of overtaking it.
   */
  deliver(e: LoggedEvent): void {
    if (this.topics.size === 0) return;
    this.outbox.post(() => {
      for (const [sessionId, topics] of this.topics) if (topics.has(e.topic)) this.send(sessionId, e.wire);
    });
    this.outbox.flush();
  }
}

const NO_TOPICS: ReadonlySet<Topic> = new Set();
