import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  EditOp,
  EditOps,
  FunctionBody,
  FunctionDiff,
  FunctionRef,
  JsonObject,
  JsonValue,
  Node,
  StoredFunctionBody,
} from '../../src/protocol/program.ts';
import { functionHash, ServiceOp } from '../../src/service/index.ts';
import { restoreProgram } from '../../src/service/load-program.ts';

describe('program wire schemas', () => {
  it('accept every op of spec 3.1', () => {
    const ops = [
      { op: 'addFunction', name: 'f' },
      { op: 'addFunction', name: 'g', signature: { params: [] } },
      { op: 'removeFunction', function: 3 },
      { op: 'renameFunction', function: 'f', name: 'h' },
      { op: 'addNode', function: 1, node: { id: 0, op: 'const', attrs: { v: 1 } } },
      { op: 'updateNode', function: 1, node: { id: 0, attrs: {} } },
      { op: 'removeNode', function: 1, node: 0 },
      { op: 'addEdge', function: 1, edge: { id: 1, from: { node: 0, port: 0 }, to: { node: 1, port: 2 } } },
      { op: 'removeEdge', function: 1, edge: 1 },
    ];
    expect(EditOps.parse(ops)).toEqual(ops);
  });

  it('reject unknown ops, extra fields, bad ids and empty or oversized edits', () => {
    expect(EditOp.safeParse({ op: 'restoreFunction', function: 1, name: 'f', nodes: [], edges: [] }).success).toBe(
      false,
    );
    expect(EditOp.safeParse({ op: 'addFunction', name: 'f', id: 3 }).success).toBe(false);
    expect(EditOp.safeParse({ op: 'removeNode', function: 1, node: 1.5 }).success).toBe(false);
    expect(EditOp.safeParse({ op: 'addNode', function: 1, node: { id: 1, op: '' } }).success).toBe(false);
    expect(EditOp.safeParse({ op: 'addNode', function: 1, node: { id: 1, op: 'x'.repeat(65) } }).success).toBe(false);
    expect(
      EditOp.safeParse({
        op: 'addEdge',
        function: 1,
        edge: { id: 1, from: { node: 0, port: -1 }, to: { node: 1, port: 0 } },
      }).success,
    ).toBe(false);
    expect(EditOp.safeParse({ op: 'addFunction', name: 'x'.repeat(129) }).success).toBe(false);
    expect(EditOps.safeParse([]).success).toBe(false);
    expect(EditOps.safeParse(Array.from({ length: 1001 }, () => ({ op: 'addFunction', name: 'f' }))).success).toBe(
      false,
    );
    expect(FunctionRef.safeParse(0).success).toBe(false);
    expect(FunctionRef.safeParse(Number.MAX_SAFE_INTEGER + 1).success).toBe(false);
    expect(Node.safeParse({ id: Number.MAX_SAFE_INTEGER, op: 'x' }).success).toBe(true);
  });

  it('only let through JSON that hashes as sent', () => {
    expect(JsonValue.safeParse({ a: [1, 'x', null, true, { b: -0 }] }).success).toBe(true);
    expect(JsonObject.safeParse(JSON.parse('{"__proto__": 1}')).success).toBe(false);
    expect(JsonValue.safeParse([JSON.parse('{"a": {"__proto__": {}}}')]).success).toBe(false);
    expect(JsonValue.safeParse('\udc00').success).toBe(false);
    expect(JsonValue.safeParse({ '\ud800x': 1 }).success).toBe(false);
    expect(JsonValue.safeParse('😀').success).toBe(true);
    expect(JsonValue.safeParse(Number.NaN).success).toBe(false);
    expect(JsonValue.safeParse(new Date()).success).toBe(false);
    expect(JsonValue.safeParse(undefined).success).toBe(false);
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(JsonValue.safeParse(deep).success).toBe(false);
    expect(JsonObject.safeParse([]).success).toBe(false);
  });

  it('refuse U+0000 from clients but load it from stores written before it was refused', () => {
    const body = {
      id: 1,
      name: 'f\u0000',
      signature: { '\u0000': 'x' },
      nodes: [{ id: 0, op: 'o\u0000', attrs: { v: '\u0000' } }],
      edges: [],
    };
    expect(FunctionBody.safeParse(body).success).toBe(false);
    expect(StoredFunctionBody.safeParse(body).success).toBe(true);
    expect(StoredFunctionBody.safeParse({ ...body, name: '\ud800' }).success).toBe(false);
    const loaded = restoreProgram(
      {
        name: 'main',
        revision: 1,
        nextFunctionId: 2,
        functions: [{ functionId: 1, version: 1, revision: 1, hash: functionHash(body), body }],
      },
      'test store',
    );
    expect(loaded.functions.get(1)?.body.name).toBe('f\u0000');
    const { id, ...restored } = body;
    expect(ServiceOp.safeParse({ op: 'restoreFunction', function: id, ...restored }).success).toBe(true);
  });

  it('keep the internal restoreFunction op out of the wire schema but in ServiceOp', () => {
    expect(ServiceOp.safeParse({ op: 'restoreFunction', function: 1, name: 'f', nodes: [], edges: [] }).success).toBe(
      true,
    );
    expect(ServiceOp.safeParse({ op: 'addFunction', name: 'f' }).success).toBe(true);
  });

  it('generate JSON Schema with descriptions', () => {
    for (const schema of [EditOps, FunctionBody, FunctionDiff]) {
      const json = z.toJSONSchema(schema) as Record<string, unknown>;
      expect(typeof json.description).toBe('string');
    }
    const ops = JSON.stringify(z.toJSONSchema(EditOps));
    for (const op of [
      'addFunction',
      'removeFunction',
      'renameFunction',
      'addNode',
      'updateNode',
      'removeNode',
      'addEdge',
      'removeEdge',
    ]) {
      expect(ops).toContain(`"${op}"`);
    }
    expect(ops).not.toContain('restoreFunction');
  });
});
