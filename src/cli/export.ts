import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { LockstepClient } from '../client/index.ts';
import { DEFAULT_PROGRAM } from '../protocol/limits.ts';
import { PROGRAM_FILE_FORMAT, PROGRAM_FILE_VERSION, type ProgramFile } from '../protocol/program-file.ts';
import {
  CommandFailed,
  CONNECTION_OPTIONS,
  connectClient,
  connectionHelp,
  connectionOf,
  docPath,
  rejectUnknownOptions,
} from './common.ts';

export const EXPORT_HELP = `Usage: lockstep export [options] > main.json

Writes one program of a running server (of a cluster: its leader) as a JSON file: every
function (id, name, signature, nodes, edges) with its version and content hash, all read at one
revision. lockstep import reads it back. Needs no lock and changes nothing. The format:
${docPath('operations.md')}; its JSON Schema: ${docPath('program-file.schema.json')}.

Options:
${connectionHelp(20)}
  --program <name>     the program to export (default ${DEFAULT_PROGRAM})
  --output <file>      write there instead of to stdout
  --help               show this text`;

/** Reads while edits go on: a read that saw two revisions is made again, this many times at most. */
const ATTEMPTS = 5;

export async function exportCommand(argv: string[]): Promise<void> {
  const options = {
    ...CONNECTION_OPTIONS,
    program: { type: 'string' },
    output: { type: 'string' },
    help: { type: 'boolean' },
  } as const;
  rejectUnknownOptions('export', argv, Object.keys(options));
  const { values } = parseArgs({ args: argv, options, strict: true });
  if (values.help === true) {
    console.log(EXPORT_HELP);
    return;
  }
  const client = await connectClient({
    ...connectionOf(values),
    name: 'lockstep-export',
    role: 'observer',
    reconnect: false,
  });
  try {
    const file = await exportProgram(client, values.program ?? DEFAULT_PROGRAM);
    const text = `${JSON.stringify(file, null, 2)}\n`;
    if (values.output === undefined) process.stdout.write(text);
    else writeFileSync(values.output, text);
    console.error(
      `exported program ${file.program} at revision ${file.revision}: ${file.functions.length} function(s)${values.output === undefined ? '' : ` to ${values.output}`}`,
    );
  } finally {
    await client.close();
  }
}

/**
 * The program as it stands at one revision: its functions are read one by one, so the overview is
 * read again after them, and the whole read made again if an edit came in between.
 */
export async function exportProgram(client: LockstepClient, program: string): Promise<ProgramFile> {
  for (let attempt = 1; ; attempt++) {
    const before = await client.program.get({ program });
    const bodies = await Promise.all(
      [...before.functions].sort((a, b) => a.id - b.id).map((f) => client.function.get({ program, function: f.id })),
    );
    const after = await client.program.get({ program });
    if (after.revision === before.revision)
      return {
        format: PROGRAM_FILE_FORMAT,
        formatVersion: PROGRAM_FILE_VERSION,
        program,
        revision: before.revision,
        exportedAt: new Date().toISOString(),
        server: client.hello?.server ?? { name: 'lockstep', version: 'unknown' },
        functions: bodies.map((b) => ({ ...b.function, version: b.version, hash: b.hash })),
      };
    if (attempt === ATTEMPTS)
      throw new CommandFailed(
        `program ${program} changed during each of ${ATTEMPTS} reads (revision ${before.revision} to ${after.revision}): export it when fewer edits are going on`,
      );
  }
}
