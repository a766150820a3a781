import { z } from 'zod';
import { ERRORS } from './errors.ts';
import { methods, PROTOCOL_VERSION } from './methods.ts';
import { notifications } from './notifications.ts';

/**
 * The protocol as one JSON Schema document, generated from the zod schemas (the single source of
 * truth). docs/protocol.schema.json is this, committed; a test fails when they drift apart.
 */
export function protocolJsonSchema(): Record<string, unknown> {
  const toSchema = (s: z.ZodType, io: 'input' | 'output') =>
    z.toJSONSchema(s, { io, unrepresentable: 'any', target: 'draft-2020-12' });
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Lockstep protocol',
    description: `JSON-RPC 2.0 over WebSocket, protocol version ${PROTOCOL_VERSION}. Generated from src/protocol; do not edit.`,
    protocol: PROTOCOL_VERSION,
    methods: Object.fromEntries(
      Object.entries(methods).map(([name, m]) => [
        name,
        { summary: m.summary, params: toSchema(m.params, 'input'), result: toSchema(m.result, 'output') },
      ]),
    ),
    notifications: Object.fromEntries(
      Object.entries(notifications).map(([name, n]) => [
        name,
        { summary: n.summary, params: toSchema(n.params, 'output') },
      ]),
    ),
    errors: ERRORS,
  };
}

export function protocolJsonSchemaText(): string {
  return `${JSON.stringify(protocolJsonSchema(), null, 2)}\n`;
}
