import { EventEmitter } from 'eventemitter3';
import type { Clock } from '../concurrency/index.ts';
import type { EventItem, Topic } from '../protocol/methods.ts';
import { iso } from './wire-map.ts';

export interface Replay {
  items: EventItem[];
  /** Events after `since` are not all here (dropped, or from an earlier run): resync from a snapshot. */
  truncated: boolean;
  oldest: number;
  seq: number;
}

/**
 * The sequenced event stream: every event gets the next server-wide sequence number and is kept in
 * a bounded ring buffer, so a reconnecting reader can replay what it missed. The bound exists so a
 * busy server's memory does not grow with its uptime; a reader that fell further behind is told so.
 */
export class EventLog extends EventEmitter<{ event: (item: EventItem) => void }> {
  private readonly ring: (EventItem | undefined)[];
  private seq = 0;

  constructor(
    private readonly clock: Clock,
    readonly capacity = 10_000,
  ) {
    super();
    this.ring = new Array<EventItem | undefined>(capacity);
  }

  get lastSeq(): number {
    return this.seq;
  }

  get oldestSeq(): number {
    return this.seq === 0 ? 0 : Math.max(1, this.seq - this.capacity + 1);
  }

  append(topic: Topic, type: string, data: Record<string, unknown>): EventItem {
    const item: EventItem = { seq: ++this.seq, time: iso(this.clock.now()), topic, type, data };
    this.ring[item.seq % this.capacity] = item;
    this.emit('event', item);
    return item;
  }

  /** Buffered events with seq > since, in order, restricted to the given topics. */
  replay(since: number, topics: ReadonlySet<Topic>): Replay {
    const oldest = this.oldestSeq;
    // since > seq means the reader saw a previous incarnation of this server (sequence numbers
    // restart with the process): nothing it holds can be trusted, so it must resync too.
    const truncated = since + 1 < oldest || since > this.seq;
    const items: EventItem[] = [];
    for (let s = Math.max(since + 1, oldest); s <= this.seq; s++) {
      const item = this.ring[s % this.capacity];
      if (item !== undefined && topics.has(item.topic)) items.push(item);
    }
    return { items, truncated, oldest, seq: this.seq };
  }
}
