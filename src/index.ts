// The package: the server (start) and, for agents, the client (also alone as "lockstep/client").
export { start, type LockstepServer, type StartOptions } from './server.ts';
export type { ServerConfig } from './config.ts';
export * from './client/index.ts';
