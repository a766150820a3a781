// Timestamps of what a process does with its `ws` sockets, for the turn-by-turn breakdown
// (bench/turns.ts): every 'message' handler and every frame written, with what kind of frame it
// was, every garbage collection (PerformanceObserver 'gc') and the event loop's delay
// (monitorEventLoopDelay). Installed in the bench's server child (lockstep-server.ts, when
// LOCKSTEP_BENCH_TRACE is set) and in the bench process for its clients; both stamp epoch
// milliseconds (performance.timeOrigin + performance.now(): one system clock, so the two sides'
// stamps compare to within microseconds). Stored in preallocated typed arrays outside V8's heap,
// so recording allocates next to nothing and adds no work to the scavenges it observes.
import { monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';
import WebSocket from 'ws';

/** What a recorded interval was. */
export const Kind = {
  /** A 'message' handler that ran a lock.release (server) or received a lock.granted (client). */
  handlerRelease: 0,
  handlerGrant: 1,
  /** Any other 'message' handler (a request, a reply, a lock.queue push). */
  handlerOther: 2,
  /** A frame written outside any handler: a timer's work (the coalesced lock.queue push, a hold ending). */
  sendQueue: 3,
  sendOther: 4,
  gcMinor: 5,
  gcMajor: 6,
  /** A 'message' handler of a lock.queue push (client). */
  handlerQueue: 7,
  /** A 'message' handler that ran a lock.acquire (server). */
  handlerAcquire: 8,
} as const;
export type KindCode = (typeof Kind)[keyof typeof Kind];

/** One handler that ran a release and wrote a grant, as the server saw it. */
export interface ReleaseTurn {
  /** The release's 'message' handler started. */
  recvAt: number;
  /** The grant's frame: its write started and returned. */
  grantAt: number;
  grantDoneAt: number;
  /** Frames the handler wrote before the grant's. */
  framesBefore: number;
}

/** Lines the server child prints around a trace, between which its --trace-gc-nvp lines fall. */
export const TRACE_START = 'lockstep-bench trace-start';
export const TRACE_STOP = 'lockstep-bench trace-stop';

export interface Trace {
  /** CPU time (user + system) of the process over the trace, µs. */
  cpuUs: number;
  /** Frames written over the trace, in handlers or not. */
  frames: number;
  /** Intervals: kind, start, end (epoch ms). */
  kinds: number[];
  starts: number[];
  ends: number[];
  releases: ReleaseTurn[];
  /** Event loop delay over the trace, ms. */
  loopDelay: { p50: number; p99: number; max: number };
}

const CAP = 1 << 20;
const epoch = () => performance.timeOrigin + performance.now();

export interface Recorder {
  start(): void;
  stop(): Trace;
}

/** Patches ws's WebSocket in this process; `start` clears what was recorded, `stop` returns it. */
export function installRecorder(): Recorder {
  const kinds = new Uint8Array(CAP);
  const starts = new Float64Array(CAP);
  const ends = new Float64Array(CAP);
  let n = 0;
  let on = false;
  let frames = 0;
  let cpu = process.cpuUsage();
  const releases: ReleaseTurn[] = [];
  const add = (kind: KindCode, s: number, e: number) => {
    if (!on || n >= CAP) return;
    kinds[n] = kind;
    starts[n] = s;
    ends[n] = e;
    n++;
  };
  // The handler running now (a 'message' event): its frames are its own, not a timer's.
  let inHandler = false;
  let current: { recvAt: number; grantAt: number; grantDoneAt: number; framesBefore: number } | undefined;
  const proto = WebSocket.prototype as unknown as {
    emit: (ev: string | symbol, ...args: unknown[]) => boolean;
    send: (data: unknown, ...rest: unknown[]) => void;
  };
  const emit = proto.emit;
  const send = proto.send;
  proto.emit = function (this: unknown, ev: string | symbol, ...args: unknown[]): boolean {
    if (ev !== 'message' || inHandler) return emit.call(this, ev, ...args);
    const data = args[0] as Buffer;
    const release = Buffer.isBuffer(data) && data.includes('"lock.release"');
    const grant = !release && Buffer.isBuffer(data) && data.includes('"lock.granted"');
    const queue = !release && !grant && Buffer.isBuffer(data) && data.includes('"lock.queue"');
    const acquire = !release && !grant && !queue && Buffer.isBuffer(data) && data.includes('"lock.acquire"');
    const s = epoch();
    inHandler = true;
    current = release ? { recvAt: s, grantAt: 0, grantDoneAt: 0, framesBefore: 0 } : undefined;
    try {
      return emit.call(this, ev, ...args);
    } finally {
      inHandler = false;
      const kind = release
        ? Kind.handlerRelease
        : grant
          ? Kind.handlerGrant
          : queue
            ? Kind.handlerQueue
            : acquire
              ? Kind.handlerAcquire
              : Kind.handlerOther;
      add(kind, s, epoch());
      if (on && current !== undefined && current.grantAt > 0) releases.push(current);
      current = undefined;
    }
  };
  proto.send = function (this: unknown, data: unknown, ...rest: unknown[]): void {
    const s = epoch();
    send.call(this, data, ...rest);
    const e = epoch();
    if (on) frames++;
    if (inHandler) {
      if (current !== undefined && current.grantAt === 0) {
        if (typeof data === 'string' && data.includes('"lock.granted"')) {
          current.grantAt = s;
          current.grantDoneAt = e;
        } else current.framesBefore++;
      }
      return;
    }
    add(typeof data === 'string' && data.includes('"lock.queue"') ? Kind.sendQueue : Kind.sendOther, s, e);
  };
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const s = performance.timeOrigin + entry.startTime;
      // detail.kind: 1 scavenge (young generation), 2 mark-sweep-compact, 4 incremental marking, 8 weak callbacks.
      const minor = (entry as unknown as { detail?: { kind?: number } }).detail?.kind === 1;
      add(minor ? Kind.gcMinor : Kind.gcMajor, s, s + entry.duration);
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  return {
    start() {
      n = 0;
      releases.length = 0;
      loop.reset();
      loop.enable();
      cpu = process.cpuUsage();
      frames = 0;
      on = true;
    },
    stop() {
      on = false;
      loop.disable();
      const ms = (ns: number) => ns / 1e6;
      const used = process.cpuUsage(cpu);
      return {
        cpuUs: used.user + used.system,
        frames,
        kinds: Array.from(kinds.subarray(0, n)),
        starts: Array.from(starts.subarray(0, n)),
        ends: Array.from(ends.subarray(0, n)),
        releases: releases.splice(0),
        loopDelay: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
      };
    },
  };
}
