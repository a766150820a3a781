import type { HandlerTable } from './dispatch.ts';

export const eventHandlers: Pick<HandlerTable, 'events.subscribe' | 'events.unsubscribe'> = {
  'events.subscribe': {
    handle(c, { session }, p) {
      const topics = c.subscribe(session.id, p.topics);
      // Replay and the switch to live happen in this one synchronous step, so no event can fall
      // between them (no gap) or be sent twice (no duplicate).
      const replay = c.events.replay(p.since ?? c.events.lastSeq, new Set(p.topics));
      for (const item of replay.items) c.notify(session.id, 'event', item);
      return { topics: [...topics], seq: replay.seq, replayed: replay.items.length, truncated: replay.truncated, oldest: replay.oldest };
    },
  },
  'events.unsubscribe': {
    handle: (c, { session }, p) => ({ topics: c.unsubscribe(session.id, p.topics) }),
  },
};
