import { KeyReused, LockDenied } from '../concurrency/index.ts';
import type { Blocker, Grant as CoreGrant, QueuePosition } from '../concurrency/index.ts';
import { LockstepError, RpcCode, RpcProtocolError } from '../protocol/errors.ts';
import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import type { Grant } from '../protocol/wire.ts';
import type { Resource } from '../protocol/resource.ts';

// The cores keep epoch milliseconds; the wire speaks ISO-8601 UTC.

// Under load many grants in a row share a millisecond (and so an expiresAt): formatting the same
// instant once saves a Date and a string per reply.
let lastMs = Number.NaN;
let lastIso = '';

export function iso(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}

export function wireGrant(g: CoreGrant): Grant {
  return { resource: g.resource, mode: g.mode, fence: g.fence, expiresAt: iso(g.expiresAt) };
}

export function wireGrants(gs: readonly CoreGrant[]): Grant[] {
  return gs.map(wireGrant);
}

export function wireBlockers(bs: readonly Blocker[]) {
  return bs.map((b) => ({ ...b, holders: b.holders.map((h) => ({ ...h, expiresAt: iso(h.expiresAt) })) }));
}

/** The lock core's typed refusals of an acquire as the wire states them; anything else as it is. */
export function wireAcquireError(err: unknown): unknown {
  if (err instanceof LockDenied) {
    return new LockstepError(err.type, err.message, { blockers: wireBlockers(err.blockers) }, err.retryAfterMs);
  }
  if (err instanceof KeyReused) {
    return new RpcProtocolError(RpcCode.INVALID_PARAMS, `Invalid params for lock.acquire: ${err.message}`, {
      key: err.key,
    });
  }
  return err;
}

export function wirePositions(ps: readonly QueuePosition[]): QueuePosition[] {
  return ps.map((p) => ({ resource: p.resource, position: p.position }));
}

/** `{program?, functions?, structure?, paths?}` as the lock methods take it, to resources. */
export function selectResources(p: {
  program?: string | undefined;
  functions?: number[] | undefined;
  structure?: boolean | undefined;
  paths?: string[] | undefined;
}): Resource[] {
  const program = p.program ?? DEFAULT_PROGRAM;
  const out: Resource[] = [];
  if (p.structure === true) out.push({ program, structure: true });
  for (const f of p.functions ?? []) out.push({ program, function: f });
  if (p.paths !== undefined) for (const path of p.paths) out.push({ program, path });
  return out;
}
