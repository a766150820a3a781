import { z } from 'zod';

// Rule 7 of docs/cluster.md: no input can stop the cluster. PostgreSQL refuses U+0000 in text
// (and in jsonb strings and keys), and a lone surrogate has no UTF-8 encoding (node-postgres
// would store U+FFFD in its place; a content hash cannot be computed). Such text is refused at
// the protocol, with -32602 naming the field, on every store alike: it never reaches a journal or
// a table, where one refused row would fail every transaction that writes it.

/** With the u flag paired surrogates form one code point, so only unpaired ones match \p{Cs}. */
const UNSTORABLE = /[\0\p{Cs}]/u;

export const UNSTORABLE_MESSAGE = 'must not contain U+0000 or a lone surrogate';

/**
 * The same rule as a JSON Schema `pattern`: it reads alike with and without the u flag (a pair
 * is one code point outside the excluded class, or two code units matched by the second branch).
 * test/protocol/text.test.ts holds it to isStorable.
 */
export const STORABLE_PATTERN = '^(?:[^\\u0000\\uD800-\\uDFFF]|[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])*$';

export function isStorable(s: string): boolean {
  return !UNSTORABLE.test(s);
}

/** A text field a client sends: `min` to `max` characters, every store able to hold it. */
export function Text(min: number, max: number): z.ZodString {
  return z.string().min(min).max(max).refine(isStorable, UNSTORABLE_MESSAGE).meta({ pattern: STORABLE_PATTERN });
}
