// WebSocket close codes Lockstep sends or acts on (RFC 6455 section 7.4 for 1000-1015; 4000-4999
// are the application's own). docs/protocol.md#close-codes says when each is used.

export const CloseCode = {
  /** A normal goodbye. */
  NORMAL: 1000,
  /** The server is shutting down (after `server.shutdown`); from a client, it is leaving. */
  GOING_AWAY: 1001,
  /** A close frame without a code. */
  NO_STATUS: 1005,
  /** No close frame at all: the connection was cut. Never sent, only seen. */
  ABNORMAL: 1006,
  /** UNAUTHORIZED, or no session.hello in time. */
  POLICY_VIOLATION: 1008,
  /** A message over the hard size cap. */
  MESSAGE_TOO_BIG: 1009,
  /** A slow consumer, or the server is full. */
  TRY_AGAIN_LATER: 1013,
  /** Nothing sent for the idle timeout. */
  IDLE_TIMEOUT: 4000,
  /** The session was resumed on another connection. */
  SESSION_RESUMED: 4001,
  /** Cluster: this node is a standby, or has just stopped leading; reconnect to the leader. */
  NOT_LEADER: 4002,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
