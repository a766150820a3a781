// A minimal Lockstep agent: connect, lock two functions, read them, edit both in one atomic edit
// guarded by their content hashes and fence tokens, release.
//
//   npm start                                # in one terminal
//   node --import tsx examples/minimal-agent.ts
//
// LOCKSTEP_URL overrides the server address (default ws://127.0.0.1:7420/ws).
import { LockstepClient } from '../src/client/index.ts';

const url = process.env.LOCKSTEP_URL ?? 'ws://127.0.0.1:7420/ws';
const client = await LockstepClient.connect({ url, name: 'minimal-agent' });
console.log(`connected to ${url} as ${client.sessionId}`);
// A lock can be lost while held (its lease ran out, or the server could not give it back after a
// drop): the client says so and never takes it again on its own, since someone else may have
// changed the function meanwhile. Anything read under it is stale: lock again, read again.
client.on('lost', ({ resource, reason }) => console.log(`lost the lock on ${JSON.stringify(resource)} (${reason})`));

// A fresh server's program is empty: add the two functions this example works on.
const wanted = ['tokenize', 'render'];
const existing = (await client.program.get()).functions;
const missing = wanted.filter((name) => !existing.some((f) => f.name === name));
if (missing.length > 0) {
  await client.withLocks({ structure: true, mode: 'write' }, (lock) =>
    client.edit.apply({ ops: missing.map((name) => ({ op: 'addFunction' as const, name })), fences: lock.fences }),
  );
}
const ids = (await client.program.get()).functions.filter((f) => wanted.includes(f.name)).map((f) => f.id);

// Both write locks or none; waits in the queue if another agent holds one.
const lock = await client.acquire({
  functions: ids,
  mode: 'write',
  description: 'minimal example',
  onQueue: ({ positions }) => console.log('queued at', positions.map((p) => p.position).join(', ')),
});
try {
  const current = await Promise.all(ids.map((id) => client.function.get({ function: id })));
  const ops = current.map(({ function: fn }) => {
    const nodeId = fn.nodes.reduce((max, n) => Math.max(max, n.id), 0) + 1;
    return { op: 'addNode' as const, function: fn.id, node: { id: nodeId, op: 'const', attrs: { value: nodeId } } };
  });
  // The hashes say "based on what I read": if anyone changed a function since, this is a CONFLICT.
  const expectedHashes = Object.fromEntries(current.map((c) => [String(c.function.id), c.hash]));
  lock.signal.throwIfAborted(); // LOCK_LOST: the edit would be refused anyway
  const result = await client.edit.apply({ ops, expectedHashes, fences: lock.fences });
  console.log(
    `committed revision ${result.revision}:`,
    result.functions.map((f) => `${f.name} v${f.version}`).join(', '),
  );
} finally {
  await lock.release();
}
await client.close();
