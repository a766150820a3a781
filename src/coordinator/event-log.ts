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
 * A logged event; its wire form is built the first time someone needs it, by `build` from
 * `payload`. Every event stays in the ring until 10,000 (--event-buffer) more have come, so it
 * outlives a scavenge or two: a hot event passes a shared builder and the payload it already has
 * instead of a closure (with its context and what it copies), which is what the ring kept most of
 * (bench/alloc-turns.ts live).
 */
export class LoggedEvent {
  private item: EventItem | undefined;

  constructor(
    readonly seq: number,
    readonly topic: Topic,
    private readonly at: number,
    private readonly type: string,
    private build: ((payload: never, name: string) => Record<string, unknown>) | undefined,
    private payload: unknown,
    /** The acting session's name when it happened, for the data (the session may be gone by then). */
    private name: string,
  ) {}

  get wire(): EventItem {
    if (this.item === undefined) {
      const data = this.build!(this.payload as never, this.name);
      this.item = { seq: this.seq, time: iso(this.at), topic: this.topic, type: this.type, data };
      this.build = undefined;
      this.payload = undefined;
      this.name = '';
    }
    return this.item;
  }
}

/**
 * The sequenced event stream: every event gets the next server-wide sequence number and is kept in
 * a bounded ring buffer, so a reconnecting reader can replay what it missed. The bound exists so a
 * busy server's memory does not grow with its uptime; a reader that fell further behind is told so.
 * Events are logged as builders: most are never read (nobody subscribed, nobody replays), and
 * formatting every lock event's wire form was a measurable part of each request's cost.
 */
export class EventLog extends EventEmitter<{ event: (e: LoggedEvent) => void }> {
  private readonly ring: (LoggedEvent | undefined)[];
  private seq = 0;

  constructor(
    private readonly clock: Clock,
    readonly capacity = 10_000,
  ) {
    super();
    this.ring = new Array<LoggedEvent | undefined>(capacity);
  }

  get lastSeq(): number {
    return this.seq;
  }

  get oldestSeq(): number {
    return this.seq === 0 ? 0 : Math.max(1, this.seq - this.capacity + 1);
  }

  /**
   * `data(payload, name)` builds the event's data; it and `payload` must hold values, not live
   * objects: it may run long after the event. `name`: the acting session's name, as it is now.
   */
  append<P>(
    topic: Topic,
    type: string,
    data: (payload: P, name: string) => Record<string, unknown>,
    payload?: P,
    name = '',
  ): void {
    const e = new LoggedEvent(++this.seq, topic, this.clock.now(), type, data, payload, name);
    this.ring[e.seq % this.capacity] = e;
    this.emit('event', e);
  }

  /** Buffered events with seq > since, in order, restricted to the given topics. */
  replay(since: number, topics: ReadonlySet<Topic>): Replay {
    const oldest = this.oldestSeq;
    // since > seq means the reader saw a previous incarnation of this server (sequence numbers
    // restart with the process): nothing it holds can be trusted, so it must resync too.
    const truncated = since + 1 < oldest || since > this.seq;
    const items: EventItem[] = [];
    for (let s = Math.max(since + 1, oldest); s <= this.seq; s++) {
      const e = this.ring[s % this.capacity];
      if (e !== undefined && topics.has(e.topic)) items.push(e.wire);
    }
    return { items, truncated, oldest, seq: this.seq };
  }
}
