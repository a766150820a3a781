import { z } from 'zod';
import { FunctionBody } from './program.ts';
import { ProgramName } from './resource.ts';
import { Hash, IsoTime } from './wire.ts';

// The file `lockstep export` writes and `lockstep import` reads: one program as it stood at one
// revision, read through the protocol (program.get, function.get). docs/program-file.schema.json
// is generated from this schema (npm run schema); docs/operations.md describes it.

export const PROGRAM_FILE_FORMAT = 'lockstep-program';
export const PROGRAM_FILE_VERSION = 1;

export const ExportedFunction = FunctionBody.extend({
  version: z.number().int().positive().describe('Its version on the exporting server (not carried over)'),
  hash: Hash.describe(
    'Its content hash (docs/protocol.md, "Content hashes"): an import checks the body against it, and the server\'s hash after the import against it',
  ),
}).describe('A function in full, with the hash of that content');

export const ProgramFile = z
  .strictObject({
    format: z.literal(PROGRAM_FILE_FORMAT).describe('What this file is'),
    formatVersion: z.literal(PROGRAM_FILE_VERSION).describe('Changes when a reader of the old one could misread it'),
    program: ProgramName.describe('The program exported (an import writes there unless told another name)'),
    revision: z.number().int().nonnegative().describe('The program revision every function was read at'),
    exportedAt: IsoTime,
    server: z
      .strictObject({ name: z.string(), version: z.string() })
      .describe('The server exported from, as its hello result names it'),
    functions: z
      .array(ExportedFunction)
      .describe('Every function, by id: an import adds them in this order, so ids without gaps come out the same'),
  })
  .describe('One Lockstep program, as lockstep export writes it and lockstep import reads it');

export type ExportedFunction = z.infer<typeof ExportedFunction>;
export type ProgramFile = z.infer<typeof ProgramFile>;

/** The program file's JSON Schema, generated from the zod schema above (docs/program-file.schema.json). */
export function programFileJsonSchemaText(): string {
  const schema = z.toJSONSchema(ProgramFile, { io: 'input', target: 'draft-2020-12' });
  return `${JSON.stringify({ ...schema, title: 'Lockstep program file', $id: 'program-file.schema.json' }, null, 2)}\n`;
}
