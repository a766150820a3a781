import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isLockstepError, type LockstepClient } from '../client/index.ts';
import type { EditOp } from '../protocol/program.ts';
import { ProgramFile } from '../protocol/program-file.ts';
import { functionHash } from '../service/hash.ts';
import {
  CommandFailed,
  CONNECTION_OPTIONS,
  connectClient,
  connectionHelp,
  connectionOf,
  docPath,
  rejectUnknownOptions,
  UsageError,
} from './common.ts';

export const IMPORT_HELP = `Usage: lockstep import <file> [options]

Writes the program in <file> (as lockstep export wrote it; - reads stdin) into a running server
(of a cluster: its leader) as one edit, one revision, under the program's structure write lock.
The program must be empty (no functions) or not exist yet (it is created). Every function's hash
is checked against its content before anything is sent, and the server's hashes against the
file's after. Function ids are assigned by the server: functions are added in the order of
their ids, so ids without gaps come out the same; the others are listed. See
${docPath('operations.md')}.

Options:
${connectionHelp(20)}
  --program <name>     the program to write (default: the one named in the file)
  --help               show this text`;

/** An edit takes at most this many operations (docs/protocol.md, edit.apply): one per function here. */
const MAX_OPS = 1000;

export async function importCommand(argv: string[]): Promise<void> {
  const options = { ...CONNECTION_OPTIONS, program: { type: 'string' }, help: { type: 'boolean' } } as const;
  rejectUnknownOptions('import', argv, Object.keys(options));
  const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  if (values.help === true) {
    console.log(IMPORT_HELP);
    return;
  }
  if (positionals.length !== 1)
    throw new UsageError('import takes one file (as lockstep export wrote it, or - for stdin); see --help');
  const path = positionals[0] as string;
  const file = checkedFile(path);
  const program = values.program ?? file.program;
  const client = await connectClient({ ...connectionOf(values), name: 'lockstep-import', reconnect: false });
  try {
    // The token decides the role: an observer's would be refused at its first write, which names
    // program.create rather than what to do.
    if (client.hello?.role === 'observer')
      throw new CommandFailed(
        "import writes, so it needs an agent token (--token or LOCKSTEP_TOKEN): this one is an observer's; see docs/operations.md",
      );
    const r = await importProgram(client, file, program);
    console.log(
      `imported ${file.functions.length} function(s) into program ${program}: revision ${r.revision}, every hash as in ${path === '-' ? 'the input (stdin)' : path}`,
    );
    for (const [from, to] of r.renumbered) console.log(`  function ${from} is now ${to}`);
  } finally {
    await client.close();
  }
}

/** The file, parsed and held to its schema, each function's hash checked against its content. */
function checkedFile(path: string): ProgramFile {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = ProgramFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(
      `${path} is not a program file as lockstep export writes it: ${issue?.path.join('.') || '(top)'}: ${issue?.message}`,
    );
  }
  const file = parsed.data;
  const wrong = file.functions.filter((f) => functionHash(f) !== f.hash).map((f) => `${f.name} (id ${f.id})`);
  if (wrong.length > 0)
    throw new UsageError(
      `${path}: the content of ${wrong.join(', ')} does not match its hash (changed since the export?)`,
    );
  if (file.functions.length > MAX_OPS)
    throw new UsageError(
      `${path} has ${file.functions.length} functions; one edit takes at most ${MAX_OPS} operations (one per function)`,
    );
  return file;
}

/**
 * One edit under the structure write lock: a whole function per addFunction op, in id order, into
 * a program with no functions. Then every hash the server answers must be the file's.
 */
export async function importProgram(
  client: LockstepClient,
  file: ProgramFile,
  program: string,
): Promise<{ revision: number; renumbered: Array<[number, number]> }> {
  await client.program.create({ name: program }).catch((err: unknown) => {
    if (!isLockstepError(err, 'CONFLICT')) throw err;
  });
  const functions = [...file.functions].sort((a, b) => a.id - b.id);
  const ops: EditOp[] = functions.map((f) => ({
    op: 'addFunction',
    name: f.name,
    ...(f.signature === undefined ? {} : { signature: f.signature }),
    nodes: f.nodes,
    edges: f.edges,
  }));
  // The frame as sent, with room for the id, fences and key around the ops.
  const size = Buffer.byteLength(JSON.stringify({ program, ops })) + 512;
  const limit = client.hello?.limits.maxMessageBytes ?? Number.POSITIVE_INFINITY;
  if (size > limit)
    throw new CommandFailed(
      `the import is one edit of ${size} bytes; the server takes messages up to ${limit} (--max-message-bytes): raise it for the import`,
    );
  const result = await client.withLocks(
    { program, structure: true, mode: 'write', description: `import of ${file.program}`, waitTimeoutMs: 30_000 },
    async (lock) => {
      const now = await client.program.get({ program });
      if (now.functions.length > 0)
        throw new CommandFailed(
          `program ${program} has ${now.functions.length} function(s): import writes into an empty program only (choose another with --program, or delete this one first)`,
        );
      return ops.length === 0 ? undefined : client.edit.apply({ program, ops, fences: lock.fences });
    },
  );
  if (result === undefined) return { revision: (await client.program.get({ program })).revision, renumbered: [] };
  const answered = new Map(result.functions.map((f) => [f.name, f]));
  const mismatched = functions.filter((f) => answered.get(f.name)?.hash !== f.hash).map((f) => f.name);
  if (mismatched.length > 0)
    throw new CommandFailed(
      `revision ${result.revision} was committed, but the server's hashes differ from the file's for ${mismatched.join(', ')}: undo it (history.undo) and report this`,
    );
  const renumbered = functions.flatMap((f): Array<[number, number]> => {
    const id = answered.get(f.name)?.id as number;
    return id === f.id ? [] : [[f.id, id]];
  });
  return { revision: result.revision, renumbered };
}
