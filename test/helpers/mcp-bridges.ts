import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from './cli.ts';

export interface Bridge {
  client: Client;
  /** The bridge process (`lockstep mcp`). */
  pid: number;
  /** What the bridge wrote to stderr so far. */
  stderr(): string;
  call(name: string, args: Record<string, unknown>, o?: CallOptions): Promise<Result>;
}

export interface CallOptions {
  /** Asks for progress and hears each message. */
  onProgress?: (message: string) => void;
  /** Cancels the call (MCP notifications/cancelled). */
  signal?: AbortSignal;
  /** The client's request timeout (restarted by each progress when onProgress is given). */
  timeout?: number;
}

export interface Result {
  text: string;
  isError: boolean;
  data: Record<string, unknown>;
}

/** `lockstep mcp` as real child processes driven by the MCP SDK's own client over stdio. */
export function useBridges() {
  const open: Client[] = [];
  // Run outside any git repository (a clone's own would get the bridges' session files) unless a test passes --repo.
  const cwd = mkdtempSync(join(tmpdir(), 'lockstep-bridge-'));
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  });
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));
  return async function bridge(
    url: string,
    name: string,
    extra: string[] = [],
    env: Record<string, string> = {},
  ): Promise<Bridge> {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'mcp', '--url', url, '--name', name, ...extra],
      cwd,
      stderr: 'pipe',
      // The SDK's default environment (PATH, HOME, ...) and what the test adds.
      env: { ...getDefaultEnvironment(), ...env },
    });
    let stderr = '';
    transport.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const client = new Client({ name: `test-${name}`, version: '1.0.0' });
    open.push(client);
    await client.connect(transport);
    return {
      client,
      pid: transport.pid as number,
      stderr: () => stderr,
      async call(tool, args, o = {}) {
        const { onProgress, signal, timeout } = o;
        const r = (await client.callTool({ name: tool, arguments: args }, undefined, {
          ...(onProgress === undefined
            ? {}
            : { onprogress: (p) => onProgress(p.message ?? ''), resetTimeoutOnProgress: true }),
          ...(signal === undefined ? {} : { signal }),
          ...(timeout === undefined ? {} : { timeout }),
        })) as CallToolResult;
        const text = r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
        return { text, isError: r.isError === true, data: (r.structuredContent ?? {}) as Record<string, unknown> };
      },
    };
  };
}
