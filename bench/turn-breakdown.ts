// Where a hand-over turn's time went (bench/turns.ts): the client's release-sent and
// grant-received times matched with the server's trace of the release's handler and the grant's
// write, and every gap between them attributed to what the process on that side was doing then
// (turn-trace.ts): collecting garbage, running other handlers, writing a timer's frames, or not
// running JS at all (the kernel delivering the frame, the scheduler giving the core to someone
// else). Priority where those overlap: garbage collection, then the rest.
import { Kind, type Trace } from './turn-trace.ts';

/** The parts of a turn, in the order the table shows them; each in ms. */
export const PARTS = [
  ['toServer', 'release sent → its handler starts on the server'],
  ['srvGc', '… of which the server collects garbage'],
  ['srvQueue', '… of which the server writes coalesced lock.queue pushes (a timer)'],
  ['srvAcquire', '… of which the server runs lock.acquire handlers'],
  ['srvOther', '… of which the server runs other handlers and timers'],
  ['srvIdle', '… of which no JS runs on the server (kernel, scheduler)'],
  ['handler', 'release handler starts → grant write starts'],
  ['grantWrite', 'grant frame written (ws.send)'],
  ['toClient', 'grant written → its frame handled on the client'],
  ['cliGc', '… of which the client collects garbage'],
  ['cliQueue', '… of which the client handles lock.queue pushes'],
  ['cliOther', '… of which the client runs other handlers and timers'],
  ['cliIdle', '… of which no JS runs on the client (kernel, scheduler)'],
] as const;
export type Part = (typeof PARTS)[number][0];
export type TurnParts = Record<Part, number> & { total: number; framesBefore: number };

interface Indexed {
  trace: Trace;
  order: number[];
  /** The longest interval: how far back one may start and still reach a window. */
  longest: number;
}

function index(trace: Trace): Indexed {
  const order = trace.starts.map((_, i) => i).sort((a, b) => trace.starts[a]! - trace.starts[b]!);
  let longest = 0;
  for (let i = 0; i < trace.starts.length; i++) longest = Math.max(longest, trace.ends[i]! - trace.starts[i]!);
  return { trace, order, longest };
}

type Label = 'gc' | 'queue' | 'acquire' | 'other';
const labelOf = (kind: number): Label =>
  kind === Kind.gcMinor || kind === Kind.gcMajor
    ? 'gc'
    : kind === Kind.sendQueue || kind === Kind.handlerQueue
      ? 'queue'
      : kind === Kind.handlerAcquire
        ? 'acquire'
        : 'other';
const RANK: Record<Label, number> = { gc: 4, queue: 3, acquire: 2, other: 1 };

/** How much of [x, y] each label covers (GC first where they overlap); the rest is idle. */
function attribute(ix: Indexed, x: number, y: number, skip: (i: number) => boolean): Record<Label | 'idle', number> {
  const out = { gc: 0, queue: 0, acquire: 0, other: 0, idle: 0 };
  if (!(y > x)) return out;
  const { trace, order } = ix;
  // First interval starting at or after x - longest.
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (trace.starts[order[mid]!]! < x - ix.longest) lo = mid + 1;
    else hi = mid;
  }
  const spans: Array<[number, number, Label]> = [];
  for (let k = lo; k < order.length; k++) {
    const i = order[k]!;
    const s = trace.starts[i]!;
    if (s >= y) break;
    const e = trace.ends[i]!;
    if (e <= x || skip(i)) continue;
    spans.push([Math.max(s, x), Math.min(e, y), labelOf(trace.kinds[i]!)]);
  }
  const edges = new Set([x, y]);
  for (const [s, e] of spans) edges.add(s).add(e);
  const cuts = [...edges].sort((a, b) => a - b);
  for (let c = 0; c + 1 < cuts.length; c++) {
    const [s, e] = [cuts[c]!, cuts[c + 1]!];
    let best: Label | undefined;
    for (const [ss, se, l] of spans) if (ss <= s && se >= e && (best === undefined || RANK[l] > RANK[best])) best = l;
    out[best ?? 'idle'] += e - s;
  }
  return out;
}

/**
 * Every turn the server's trace has a release for: `turns` are the client's [release sent,
 * grant received] in epoch ms; a turn's release is the one whose handler started inside it.
 */
export function breakDown(turns: Array<[number, number]>, server: Trace, client: Trace): TurnParts[] {
  const srv = index(server);
  const cli = index(client);
  const releases = [...server.releases].sort((a, b) => a.recvAt - b.recvAt);
  const out: TurnParts[] = [];
  let r = 0;
  for (const [a, e] of [...turns].sort((p, q) => p[0] - q[0])) {
    // Stamps of two processes: allow them 50 µs of disagreement.
    while (r < releases.length && releases[r]!.recvAt < a - 0.05) r++;
    const rel = releases[r];
    if (rel === undefined || rel.recvAt > e) continue;
    const b = Math.max(a, rel.recvAt);
    const d = Math.min(e, rel.grantDoneAt);
    const toS = attribute(srv, a, b, () => false);
    // The grant's own handler is the end of the turn, not something it waited behind.
    const toC = attribute(cli, d, e, (i) => client.kinds[i] === Kind.handlerGrant && client.starts[i]! >= e - 0.05);
    out.push({
      total: e - a,
      toServer: b - a,
      srvGc: toS.gc,
      srvQueue: toS.queue,
      srvAcquire: toS.acquire,
      srvOther: toS.other,
      srvIdle: toS.idle,
      handler: Math.max(0, rel.grantAt - b),
      grantWrite: rel.grantDoneAt - rel.grantAt,
      toClient: Math.max(0, e - d),
      cliGc: toC.gc,
      cliQueue: toC.queue,
      cliOther: toC.other,
      cliIdle: toC.idle,
      framesBefore: rel.framesBefore,
    });
    r++;
  }
  return out;
}

export interface GcSummary {
  minorPerSecond: number;
  minorMedianMs: number;
  minorMaxMs: number;
  major: number;
}

export function gcSummary(traces: Trace[], seconds: number): GcSummary {
  const minor: number[] = [];
  let major = 0;
  for (const t of traces)
    t.kinds.forEach((k, i) => {
      if (k === Kind.gcMinor) minor.push(t.ends[i]! - t.starts[i]!);
      else if (k === Kind.gcMajor) major++;
    });
  minor.sort((a, b) => a - b);
  return {
    minorPerSecond: minor.length / seconds,
    minorMedianMs: minor[Math.floor(minor.length / 2)] ?? Number.NaN,
    minorMaxMs: minor[minor.length - 1] ?? Number.NaN,
    major,
  };
}

/** The slowest `share` of turns (at least one). */
export function slowest(turns: TurnParts[], share: number): TurnParts[] {
  const sorted = [...turns].sort((a, b) => b.total - a.total);
  return sorted.slice(0, Math.max(1, Math.ceil(sorted.length * share)));
}

export function mean(turns: TurnParts[], f: (t: TurnParts) => number): number {
  return turns.length === 0 ? Number.NaN : turns.reduce((s, t) => s + f(t), 0) / turns.length;
}
