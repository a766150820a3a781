import type { RawData } from 'ws';
import type { TokenBucket } from './token-bucket.ts';

/**
 * Milliseconds of work one socket may take in one turn of the event loop before it yields: the
 * frames it has already sent wait for the next turn, after every other socket's.
 */
const MS_PER_TURN = 4;

/** What the socket must do: stop and restart reading (TCP back-pressure for the peer). */
export interface Reader {
  pause(): void;
  resume(): void;
}

export interface IntakeTarget {
  /** A frame within the session's rate: run it. A promise: it is still running (a store call). */
  run(data: RawData, isBinary: boolean): Promise<void> | undefined;
  /** The first frame over the rate: answer it RATE_LIMITED; reading stops for `waitMs`. */
  refuse(data: RawData, isBinary: boolean, waitMs: number): void;
}

interface Frame {
  data: RawData;
  isBinary: boolean;
}

/**
 * Flow control of one socket's incoming frames. A frame is charged to the session's bucket
 * before anything reads it. The first frame that finds the bucket empty is refused; reading then
 * stops until the bucket holds a token, and until the bucket is full again frames over the rate
 * wait (the socket is not read) rather than being refused one by one. Frames ws had already read
 * off the socket when it paused wait here, in order. A socket that has worked `MS_PER_TURN` in
 * this turn stops being read until the next, so one flood cannot hold the event loop. While a
 * frame's call waits for the store, the frames after it wait too: a session's calls run in order.
 */
export class Intake {
  private readonly waiting: Frame[] = [];
  private rateHold: NodeJS.Timeout | undefined;
  private yielded = false;
  /** A call of this socket is waiting for the program store. */
  private busy = false;
  /** Set by a refusal: from then on the session is paced instead of refused, until its bucket refills. */
  private pacing = false;
  private turn = -1;
  private spentMs = 0;
  private stopped = false;

  constructor(
    private readonly socket: Reader,
    private readonly bucket: TokenBucket,
    private readonly target: IntakeTarget,
  ) {}

  push(data: RawData, isBinary: boolean): void {
    if (this.stopped) return;
    if (this.held || this.waiting.length > 0) this.waiting.push({ data, isBinary });
    else this.admit({ data, isBinary });
  }

  /** The socket is gone: nothing more runs. */
  stop(): void {
    this.stopped = true;
    this.waiting.length = 0;
    clearTimeout(this.rateHold);
  }

  private get held(): boolean {
    return this.rateHold !== undefined || this.yielded || this.busy;
  }

  private admit(frame: Frame): void {
    // Pacing ends once the session has kept under the rate, not when a busy server let the bucket
    // refill while this session's frames were still waiting to be read.
    if (this.pacing && this.bucket.full && this.waiting.length === 0) this.pacing = false;
    const waitMs = this.bucket.take();
    if (waitMs > 0) {
      if (this.pacing) this.waiting.unshift(frame);
      else {
        this.pacing = true;
        this.target.refuse(frame.data, frame.isBinary, waitMs);
      }
      this.socket.pause();
      this.rateHold = setTimeout(() => {
        this.rateHold = undefined;
        this.drain();
      }, waitMs);
      return;
    }
    const turn = currentTurn();
    if (turn !== this.turn) {
      this.turn = turn;
      this.spentMs = 0;
    }
    const started = performance.now();
    const running = this.target.run(frame.data, frame.isBinary);
    if (running === undefined) {
      this.spend(started);
      return;
    }
    // A call that waits for the store: the frames after it wait too, so a session's calls run in
    // order. A store that answers within this turn (SQLite) would otherwise let one socket chain
    // call after call in microtasks without ever yielding, so that work counts against the turn.
    this.busy = true;
    this.socket.pause();
    const done = () => {
      this.busy = false;
      if (currentTurn() === turn) {
        if (this.spend(started)) return;
      }
      this.drain();
    };
    running.then(done, done);
  }

  /** Counts the work since `started` in this turn; past the budget, reading waits (true). */
  private spend(started: number): boolean {
    this.spentMs += performance.now() - started;
    if (this.spentMs < MS_PER_TURN || this.stopped) return false;
    this.yielded = true;
    this.socket.pause();
    setImmediate(() => {
      this.yielded = false;
      this.drain();
    });
    return true;
  }

  private drain(): void {
    if (this.stopped || this.held) return;
    for (let next = this.waiting.shift(); next !== undefined; next = this.waiting.shift()) {
      this.admit(next);
      if (this.held || this.stopped) return;
    }
    this.socket.resume();
  }
}

let turnNumber = 0;
let turnEnding = false;

/** A number that changes once per turn of the event loop: setImmediate runs after the poll phase. */
function currentTurn(): number {
  if (!turnEnding) {
    turnEnding = true;
    setImmediate(() => {
      turnNumber++;
      turnEnding = false;
    });
  }
  return turnNumber;
}
