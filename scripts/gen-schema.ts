// npm run schema: regenerates docs/protocol.schema.json from the zod schemas.
import { writeFileSync } from 'node:fs';
import { protocolJsonSchemaText } from '../src/protocol/json-schema.ts';

const target = new URL('../docs/protocol.schema.json', import.meta.url);
writeFileSync(target, protocolJsonSchemaText());
console.log(`wrote ${target.pathname}`);
