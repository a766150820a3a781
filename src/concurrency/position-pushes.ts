import type { Clock } from './clock.ts';
import { CoalescedTimer } from './coalesced-timer.ts';
import type { QueuePosition } from './lock-types.ts';
import { PathSlot } from './path-slot.ts';
import type { ResourceSlot, Ticket } from './resource-slot.ts';
import { positionsOf } from './snapshots.ts';

/**
 * Tickets told per run of the coalesced push. A hand-over in a queue of a hundred moves every
 * ticket each turn: written in one go, the push delayed whichever release came in behind it by
 * all of its frames (docs/benchmarks.md, "Hand-over turns"). In slices, the next one waits for
 * the event loop to run the I/O that arrived meanwhile, and the front of the queue goes first.
 */
export const PUSH_SLICE = 16;

/**
 * What each waiting ticket was told of its positions, and the pushes that keep it true: at once
 * when a ticket reaches position 1 (its turn is next) or nothing is coalesced, otherwise at most
 * one push per `queuePushMs` with the latest positions (deeper tickets less often: pushInterval),
 * so that a hand-over in a long queue pushes to one ticket now instead of to every one of them
 * (docs/protocol.md, lock.queue).
 */
export class PositionPushes {
  /** Tickets whose positions moved since they were last told, waiting for the coalesced push. */
  private readonly unpushed = new Set<Ticket>();
  private readonly timer: CoalescedTimer;

  constructor(
    private readonly queuePushMs: number,
    private readonly clock: Clock,
    private readonly push: (t: Ticket, positions: QueuePosition[]) => void,
    private readonly flush: () => void,
  ) {
    this.timer = new CoalescedTimer(clock, () => this.pushUnpushed());
  }

  /** 1 while the coalesced push is scheduled. */
  get scheduled(): number {
    return this.timer.scheduled;
  }

  close(): void {
    this.timer.close();
  }

  /**
   * What a ticket is told now: by its acquire answer, or by a push. The answer counts as a telling
   * for the interval too: in a queue that turns over within queuePushMs, a ticket otherwise got a
   * push of where it had moved a few milliseconds after its answer, and then another on reaching
   * position 1, which said nothing an agent acts on and was a frame per turn to write and read.
   */
  told(t: Ticket): void {
    t.toldAt = this.clock.now();
    for (const s of t.slots) t.reported.set(s.key, s.positionOf(t));
  }

  /** The ticket left its queues (granted or withdrawn): nothing more is pushed to it. */
  forget(t: Ticket): void {
    this.unpushed.delete(t);
  }

  /** Tells the tickets that moved on these resources where they stand. */
  renumber(slots: Set<ResourceSlot>): void {
    if (this.queuePushMs === 0) {
      this.renumberAtOnce(slots);
      return;
    }
    // The hand-over's path in a long queue: every waiter moves, each turn. Nothing per waiter is
    // allocated here (they join the standing `unpushed` set), only for the rare one reaching 1.
    let next: Ticket[] | undefined;
    const compare = (t: Ticket, slot: ResourceSlot, position: number) => {
      const told = t.reported.get(slot.key);
      if (told === position) return;
      // Pushed out of position 1 (an upgrade went in front) before being told: what it was told
      // there no longer stands, so coming back to 1 counts as reaching it and is pushed at once
      // (docs/protocol.md, lock.queue), instead of matching the stale 1 and staying silent.
      if (position > 1 && told === 1) t.reported.delete(slot.key);
      if (position > 1) this.unpushed.add(t);
      else if (next === undefined) next = [t];
      else if (!next.includes(t)) next.push(t);
    };
    forEachPosition(slots, compare);
    if (next !== undefined) for (const t of next) this.pushNow(t);
    // A move waits at most one interval for its push, even when the next run was set later for
    // deeper tickets only.
    if (this.unpushed.size > 0) this.timer.runBy(this.clock.now() + this.queuePushMs);
  }

  /** Nothing coalesced: every ticket that moved is told now. */
  private renumberAtOnce(slots: Set<ResourceSlot>): void {
    const moved = new Set<Ticket>();
    const compare = (t: Ticket, slot: ResourceSlot, position: number) => {
      if (t.reported.get(slot.key) === position) return;
      moved.add(t);
      t.reported.set(slot.key, position);
    };
    forEachPosition(slots, compare);
    for (const t of moved) this.push(t, positionsOf(t));
  }

  private pushNow(t: Ticket): void {
    this.unpushed.delete(t);
    this.told(t);
    this.push(t, positionsOf(t));
  }

  /**
   * How long a ticket goes between pushes: queuePushMs near the front, a multiple of it further
   * back (one more per PUSH_SLICE places past position 1, by its nearest position), so that a
   * deep queue's moves cost a few frames a turn instead of one per waiter per interval.
   */
  private pushInterval(nearest: number): number {
    return this.queuePushMs * Math.max(1, Math.ceil((nearest - 1) / PUSH_SLICE));
  }

  /**
   * The coalesced push: the tickets still waiting whose positions differ from what they were last
   * told and whose interval (pushInterval) has passed since they were, nearest the front first,
   * PUSH_SLICE of them per run; the next run comes after the event loop has had its turn when
   * more are due, else when the next one is. So pushes to one ticket are at least queuePushMs
   * apart (bar reaching position 1), and a changed position is never left untold.
   */
  private pushUnpushed(): void {
    const now = this.clock.now();
    const due: Array<[Ticket, number]> = [];
    let next = Number.POSITIVE_INFINITY;
    for (const t of this.unpushed) {
      let nearest = Number.POSITIVE_INFINITY;
      let moved = false;
      for (const s of t.slots) {
        const at = s.positionOf(t);
        nearest = Math.min(nearest, at);
        if (t.reported.get(s.key) !== at) moved = true;
      }
      if (!moved) this.unpushed.delete(t);
      else {
        const at = t.toldAt + this.pushInterval(nearest);
        if (at <= now) due.push([t, nearest]);
        else next = Math.min(next, at);
      }
    }
    due.sort((a, b) => a[1] - b[1]);
    for (const [t] of due.slice(0, PUSH_SLICE)) this.pushNow(t);
    // A millisecond on (what a 0 ms timer is in Node), so the timer runs again after the I/O.
    if (due.length > PUSH_SLICE) this.timer.runBy(now + 1);
    else if (Number.isFinite(next)) this.timer.runBy(next);
    this.flush();
  }
}

/**
 * Calls `visit` with each ticket waiting on these resources, for each of its queues there, with its
 * position in that queue: a function's queue by index; a path's tickets whole, once each, on every
 * path they name, since their entries may move on any path above it. Nothing is allocated per
 * ticket (renumber's hot path), only the set of path tickets when a path changed.
 */
function forEachPosition(
  slots: Set<ResourceSlot>,
  visit: (t: Ticket, slot: ResourceSlot, position: number) => void,
): void {
  let paths: Set<Ticket> | undefined;
  for (const slot of slots) {
    if (slot instanceof PathSlot) {
      paths ??= new Set();
      for (const t of slot.queue) paths.add(t);
      continue;
    }
    const queue = slot.queue;
    for (let i = 0; i < queue.length; i++) visit(queue[i]!, slot, i + 1);
  }
  if (paths !== undefined) for (const t of paths) for (const s of t.slots) visit(t, s, s.positionOf(t));
}
