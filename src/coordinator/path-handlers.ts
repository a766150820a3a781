import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import type { ResultOf } from '../protocol/methods.ts';
import { isPath } from '../protocol/resource.ts';
import type { HandlerTable } from './call-context.ts';
import { iso } from './wire-map.ts';

// paths.check (docs/protocol.md): what a git guard asks before a commit, for the committing
// agent's session, named by its id.

export const pathHandlers: Pick<HandlerTable, 'paths.check'> = {
  'paths.check': {
    async handle(c, _ctx, p) {
      const program = p.program ?? DEFAULT_PROGRAM;
      const recorded = await c.programs.contents(program, [...new Set(p.changes.map((ch) => ch.path))]);
      // The locks as they are now, after the store was read: a lock must be held when it is asked.
      const changes: ResultOf<'paths.check'>['changes'] = p.changes.map((ch) => {
        const writer = c.locks.pathWriter(p.session, { program, path: ch.path });
        const record = recorded.get(ch.path);
        const stale =
          record === undefined || record.blob === ch.base
            ? {}
            : {
                recorded: {
                  blob: record.blob,
                  ...(record.commit === undefined ? {} : { commit: record.commit }),
                  sessionId: record.sessionId,
                  name: record.sessionName,
                  at: iso(record.at),
                },
              };
        if (writer.held !== undefined) {
          return { path: ch.path, held: true, fence: writer.held.fence, holders: [], queueLength: 0, ...stale };
        }
        const holders = writer.blocker.holders.flatMap((h) =>
          h.resource !== undefined && isPath(h.resource)
            ? [
                {
                  sessionId: h.sessionId,
                  name: c.nameOf(h.sessionId),
                  mode: h.mode,
                  path: h.resource.path,
                  ...(h.description === undefined ? {} : { description: h.description }),
                  expiresAt: iso(h.expiresAt),
                },
              ]
            : [],
        );
        return { path: ch.path, held: false, holders, queueLength: writer.blocker.queueLength, ...stale };
      });
      return { program, session: p.session, changes };
    },
  },
};
