import type { Clock } from './clock.ts';
import type { Deadline, Deadlines } from './deadlines.ts';
import type { QueuePosition } from './lock-types.ts';
import { PathSlot } from './path-slot.ts';
import type { ResourceSlot, Ticket } from './resource-slot.ts';
import { positionsOf } from './snapshots.ts';

/**
 * What each waiting ticket was told of its positions, and the pushes that keep it true: at once
 * when a ticket reaches position 1 (its turn is next) or nothing is coalesced, otherwise at most
 * one push per `queuePushMs` with the latest positions, so that a hand-over in a long queue
 * pushes to one ticket now instead of to every one of them (docs/protocol.md, lock.queue).
 */
export class PositionPushes {
  /** Tickets whose positions moved since they were last told, waiting for the coalesced push. */
  private readonly unpushed = new Set<Ticket>();
  private pushAt: Deadline | undefined;

  constructor(
    private readonly queuePushMs: number,
    private readonly clock: Clock,
    private readonly deadlines: Deadlines,
    private readonly push: (t: Ticket, positions: QueuePosition[]) => void,
    private readonly flush: () => void,
  ) {}

  /** What a new ticket's acquire answer tells it. */
  told(t: Ticket): void {
    for (const s of t.slots) t.reported.set(s.key, s.positionOf(t));
  }

  /** The ticket left its queues (granted or withdrawn): nothing more is pushed to it. */
  forget(t: Ticket): void {
    this.unpushed.delete(t);
  }

  /** Tells the tickets that moved on these resources where they stand. */
  renumber(slots: Set<ResourceSlot>): void {
    const coalesce = this.queuePushMs > 0;
    const moved = new Set<Ticket>();
    const next = new Set<Ticket>();
    // A path's entries may move on any path above it: their tickets are checked whole, below.
    let paths: Set<Ticket> | undefined;
    for (const slot of slots) {
      if (slot instanceof PathSlot) {
        paths ??= new Set();
        for (const t of slot.queue) paths.add(t);
        continue;
      }
      slot.queue.forEach((t, i) => {
        this.compare(t, slot, i + 1, coalesce, moved, next);
      });
    }
    if (paths !== undefined)
      for (const t of paths) for (const s of t.slots) this.compare(t, s, s.positionOf(t), coalesce, moved, next);
    for (const t of moved) {
      if (!coalesce) this.push(t, positionsOf(t));
      else if (next.has(t)) this.pushNow(t);
      else this.unpushed.add(t);
    }
    if (this.unpushed.size > 0 && this.pushAt === undefined) {
      this.pushAt = this.deadlines.add(this.clock.now() + this.queuePushMs, () => this.pushUnpushed());
    }
  }

  private compare(
    t: Ticket,
    slot: ResourceSlot,
    position: number,
    coalesce: boolean,
    moved: Set<Ticket>,
    next: Set<Ticket>,
  ): void {
    if (t.reported.get(slot.key) === position) return;
    // Pushed out of position 1 (an upgrade went in front) before being told: what it was told
    // there no longer stands, so coming back to 1 counts as reaching it and is pushed at once
    // (docs/protocol.md, lock.queue), instead of matching the stale 1 and staying silent.
    if (coalesce && position > 1 && t.reported.get(slot.key) === 1) t.reported.delete(slot.key);
    moved.add(t);
    // Told right below: the hot path of a hand-over when nothing is coalesced.
    if (!coalesce) t.reported.set(slot.key, position);
    else if (position === 1) next.add(t);
  }

  private pushNow(t: Ticket): void {
    this.unpushed.delete(t);
    this.told(t);
    this.push(t, positionsOf(t));
  }

  /**
   * The coalesced push: every ticket still waiting whose positions differ from what it was last
   * told. The next one is scheduled only by the next move, so pushes to one ticket are at least
   * queuePushMs apart (bar reaching position 1).
   */
  private pushUnpushed(): void {
    this.pushAt = undefined;
    const due = [...this.unpushed];
    this.unpushed.clear();
    for (const t of due) {
      if (t.slots.some((s) => t.reported.get(s.key) !== s.positionOf(t))) this.pushNow(t);
    }
    this.flush();
  }
}
