/**
 * Events wait here until the operation that caused them has finished, so listeners always see a
 * consistent state. A listener may call back in: the nested operation's events queue behind the
 * current ones instead of overtaking them, and an event interrupted by a throwing listener goes
 * out with the next flush.
 */
export class Outbox {
  private queue: Array<() => void> = [];
  private sent = 0;
  private flushing = false;

  post(emit: () => void): void {
    this.queue.push(emit);
  }

  flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.sent < this.queue.length) this.queue[this.sent++]!();
    } finally {
      this.flushing = false;
      if (this.sent === this.queue.length) {
        this.queue = [];
        this.sent = 0;
      }
    }
  }
}
