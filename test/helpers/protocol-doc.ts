import { readFileSync } from 'node:fs';

/** docs/protocol.md as the tests read it. */
export const protocolDoc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

export interface EventRow {
  /** `topic type`, e.g. `edits conflict`. */
  key: string;
  /** The top-level fields of `data`; optional ones are marked `?` in the table. */
  required: string[];
  optional: string[];
}

/** The rows of the topic tables in the "Event topics" section. */
export function eventRows(): EventRow[] {
  const section = protocolDoc.slice(protocolDoc.indexOf('## Event topics'), protocolDoc.indexOf('## Close codes'));
  const rows: EventRow[] = [];
  for (const part of section.split('\n### ').slice(1)) {
    const topic = /^`(\w+)`/.exec(part)?.[1];
    for (const row of part.matchAll(/^\| `(\w+)` +\|.*\| `\{(.*)\}` +\|$/gm)) {
      const key = `${topic} ${row[1]}`;
      const fields: EventRow = { key, required: [], optional: [] };
      for (const field of splitTopLevel(row[2] as string)) {
        const name = /^(\w+)(\??)/.exec(field.trim());
        if (name === null) throw new Error(`cannot read the field "${field}" of ${key}`);
        (name[2] === '?' ? fields.optional : fields.required).push(name[1] as string);
      }
      rows.push(fields);
    }
  }
  return rows;
}

/** `a, b: {c, d}, e` -> its three top-level parts. */
function splitTopLevel(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const ch = list[i];
    if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(list.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(list.slice(start));
  return parts;
}
