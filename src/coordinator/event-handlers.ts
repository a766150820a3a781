import type { HandlerTable } from './call-context.ts';

export const eventHandlers: Pick<HandlerTable, 'events.subscribe' | 'events.unsubscribe'> = {
  'events.subscribe': {
    handle(c, { session }, p) {
      // Topics already followed live are not replayed again: that would send duplicates.
      const fresh = new Set(p.topics.filter((t) => !c.subscriptions.of(session.id).has(t)));
      const topics = c.subscriptions.add(session.id, p.topics);
      // Replay and the switch to live happen in this one synchronous step, so no event can fall
      // between them (no gap) or be sent twice (no duplicate).
      const replay = c.events.replay(p.since ?? c.events.lastSeq, fresh);
      for (const item of replay.items) c.notify(session.id, 'event', item);
      // Sequence numbers restart with the process: a `since` from another run means nothing here.
      const otherRun = p.runId !== undefined && p.runId !== c.runId;
      return {
        topics: [...topics],
        seq: replay.seq,
        replayed: replay.items.length,
        truncated: replay.truncated || otherRun,
        oldest: replay.oldest,
        runId: c.runId,
      };
    },
  },
  'events.unsubscribe': {
    handle: (c, { session }, p) => ({ topics: c.subscriptions.remove(session.id, p.topics) }),
  },
};
