import { EventEmitter } from 'eventemitter3';
import { describe, expect, it } from 'vitest';
import { LockstepClientError } from '../../src/client/errors.ts';
import type { LockstepClient } from '../../src/client/index.ts';
import { ServerLink } from '../../src/mcp/server-link.ts';

// A tool call caught by the connection dropping: sent as the socket closed, it waits for the
// reconnect the SDK promises, and without one ends in a TIMEOUT that says only "not connected
// within 10000 ms". The bridge answers it as it answers a call made while down: the server, the
// cause, and that it keeps trying (CI found the bare TIMEOUT under load, test/mcp/waits.test.ts).

const URL = 'ws://127.0.0.1:7420/ws';

function fakeClient(state: string): LockstepClient {
  return Object.assign(new EventEmitter(), { state, urls: [URL] }) as unknown as LockstepClient;
}

const link = (client: LockstepClient) => new ServerLink(client, { explain: async (e) => e, log: () => undefined });

describe('ServerLink.failure', () => {
  it('answers an unsent call while the connection is down with the server and the cause', () => {
    const client = fakeClient('reconnecting');
    const l = link(client);
    (client as unknown as EventEmitter).emit('disconnected', { code: 1001, reason: 'restart' });
    const unsent = LockstepClientError.local('TIMEOUT', 'program.get: not connected within 10000 ms', 'program.get', {
      sent: false,
    });
    const answered = l.failure(unsent) as LockstepClientError;
    expect(answered.type).toBe('CONNECT_FAILED');
    expect(answered.message).toContain(
      `not connected to the Lockstep server at ${URL}: the connection dropped (close 1001: restart)`,
    );
    expect(answered.message).toContain('The bridge keeps trying');
    const notSent = LockstepClientError.local(
      'DISCONNECTED',
      'not connected: program.get was not sent',
      'program.get',
      {
        sent: false,
      },
    );
    expect((l.failure(notSent) as LockstepClientError).type).toBe('CONNECT_FAILED');
  });

  it('keeps every other failure as it is: a call that may have been done, or any while connected', () => {
    const down = link(fakeClient('reconnecting'));
    const inDoubt = LockstepClientError.local(
      'DISCONNECTED',
      'the socket dropped with edit.apply outstanding',
      'edit.apply',
    );
    expect(down.failure(inDoubt)).toBe(inDoubt);
    const open = link(fakeClient('open'));
    const unsent = LockstepClientError.local('TIMEOUT', 'x', 'program.get', { sent: false });
    expect(open.failure(unsent)).toBe(unsent);
  });
});
