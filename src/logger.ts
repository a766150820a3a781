import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';

/**
 * The server's logger: always on stderr, so that stdout carries only what scripts read (the
 * addresses `lockstep serve` prints); lines for people on a terminal, JSON lines otherwise, unless
 * `log` says which.
 */
export function createLogger(o: { log: 'auto' | 'pretty' | 'json'; logLevel: string }): Logger {
  const pretty = o.log === 'pretty' || (o.log === 'auto' && process.stderr.isTTY === true);
  // Synchronous on both paths: what was logged before an exit is on the terminal or in the file.
  return pretty
    ? pino({ level: o.logLevel }, PinoPretty({ destination: 2, sync: true }))
    : pino({ level: o.logLevel }, pino.destination({ dest: 2, sync: true }));
}
