import { backoffDelay, DEFAULT_BACKOFF } from '../client/backoff.ts';
import { LockstepClientError, toClientError } from '../client/errors.ts';
import type { LockstepClient } from '../client/index.ts';

/** How long a tool call waits for a connection on its way up before it answers what is wrong. */
const READY_WAIT_MS = 3_000;

export interface LinkOptions {
  /** Turns a connect failure into one that says what to do (a token to pass, the /ws path). */
  explain(err: unknown): Promise<unknown>;
  log(line: string): void;
}

/**
 * The bridge's hold on its Lockstep server. An MCP client starts the bridge when it starts, which
 * may be before the server: the bridge serves its tools at once and connects in the background,
 * trying again until the server answers; the SDK then keeps the session across drops. A tool call
 * while there is no session waits briefly, then answers with the server's URL and why it cannot
 * be reached, instead of the bridge exiting (which the agent sees as "Connection closed").
 */
export class ServerLink {
  /** Why there is no session now; undefined while one is open. */
  private cause = 'not connected yet';
  /** A refusal that trying again cannot fix (a wrong token): every call answers it. */
  private fatal: LockstepClientError | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;

  constructor(
    readonly client: LockstepClient,
    private readonly o: LinkOptions,
  ) {
    client.on('disconnected', ({ code, reason }) => {
      this.cause = `the connection dropped (close ${code}${reason === '' ? '' : `: ${reason}`})`;
    });
    client.on('reconnecting', ({ error }) => {
      if (error !== undefined) this.cause = error.message;
    });
  }

  /** Connects, trying again with backoff until the server answers, stop(), or a refusal for good. */
  async start(): Promise<void> {
    let last = '';
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.client.connect();
        return;
      } catch (err) {
        const e = toClientError(await this.o.explain(err));
        this.cause = e.message;
        if (this.stopped) return;
        if (!e.retryable) {
          this.fatal = e;
          this.o.log(`${e.message}; not trying again: fix the configuration and restart the bridge`);
          return;
        }
        if (e.message !== last) this.o.log(`waiting for the server: ${e.message}; trying again`);
        last = e.message;
        await this.pause(backoffDelay(attempt, DEFAULT_BACKOFF));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /**
   * Resolves once the session is open (waiting up to READY_WAIT_MS for one on its way); else a
   * CONNECT_FAILED that names the server and the cause, for the agent to read.
   */
  async ready(signal: AbortSignal): Promise<void> {
    if (this.fatal !== undefined) throw this.fatal;
    if (this.isOpen()) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.client.off('connected', done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, READY_WAIT_MS);
      this.client.on('connected', done);
      signal.addEventListener('abort', done, { once: true });
    });
    if (this.isOpen()) return;
    throw this.notConnected();
  }

  /**
   * What a tool call that failed tells the agent: one the connection's drop kept from being sent
   * (it came as the socket closed, and the reconnect it waited for did not come) answers as
   * ready() would have, with the server and the cause, instead of a bare TIMEOUT after the SDK's
   * connect wait. Only unsent calls: one whose outcome is unknown keeps its own error.
   */
  failure(err: unknown): unknown {
    const e = toClientError(err);
    const unsent = (e.type === 'DISCONNECTED' || e.type === 'TIMEOUT') && e.data?.sent === false;
    return unsent && !this.isOpen() && this.fatal === undefined ? this.notConnected() : err;
  }

  private notConnected(): LockstepClientError {
    const urls = this.client.urls.join(', ');
    return new LockstepClientError({
      type: 'CONNECT_FAILED',
      code: 0,
      retryable: true,
      retryAfterMs: DEFAULT_BACKOFF.maxDelayMs,
      message:
        `not connected to the Lockstep server at ${urls}: ${this.cause}. The bridge keeps trying and ` +
        'connects as soon as the server answers (is `lockstep serve` running there, and is the URL right?); call again then',
      data: { urls: this.client.urls, cause: this.cause },
    });
  }

  /** A method, not a field read, so that the check after the wait is not narrowed away. */
  private isOpen(): boolean {
    return this.client.state === 'open';
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
