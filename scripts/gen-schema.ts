// npm run schema: regenerates docs/protocol.schema.json and docs/program-file.schema.json from the zod schemas.
import { writeFileSync } from 'node:fs';
import { programFileJsonSchemaText } from '../src/protocol/program-file.ts';
import { protocolJsonSchemaText } from '../src/protocol/json-schema.ts';

for (const [file, text] of [
  ['protocol.schema.json', protocolJsonSchemaText()],
  ['program-file.schema.json', programFileJsonSchemaText()],
] as const) {
  const target = new URL(`../docs/${file}`, import.meta.url);
  writeFileSync(target, text);
  console.log(`wrote ${target.pathname}`);
}
