import { WebSocket } from 'ws';
import { setDefaultWebSocket } from './client-options.ts';

// The Node entry: where there is no global WebSocket (Node 20), the `ws` package is the default.
setDefaultWebSocket(WebSocket);

export * from './browser.ts';
export { changedContents, headCommit, type StagedChange, stagedChanges } from './git.ts';
export {
  findSessionRecord,
  type PublishedSession,
  type PublishOptions,
  publishSession,
  type SessionRecord,
  sessionDir,
} from './session-file.ts';
