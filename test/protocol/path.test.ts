import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { comparePaths, PATH_PATTERN, pathAncestors, pathProblem } from '../../src/protocol/path.ts';

// The path rules of docs/protocol.md ("Paths"): the JSON Schema pattern says what pathProblem
// says (bar the byte length, which a pattern cannot count), and paths sort as a tree.

const pattern = new RegExp(PATH_PATTERN);
const alphabet = fc.constantFrom('a', 'b', '.', '/', '\u0000', 'é', '\ud800', '\udc00', '😀', 'Z');
const anyPath = fc.array(alphabet, { maxLength: 12 }).map((cs) => cs.join(''));

describe('paths', () => {
  it('are refused by the schema pattern exactly when a rule is broken', () => {
    fc.assert(
      fc.property(anyPath, (path) => {
        expect(pattern.test(path), JSON.stringify(path)).toBe(pathProblem(path) === undefined);
      }),
      { numRuns: 2000, seed: 20_261_207 },
    );
  });

  it('are at most 1024 bytes of UTF-8', () => {
    expect(pathProblem('é'.repeat(512))).toBeUndefined();
    expect(pathProblem(`${'é'.repeat(512)}a`)).toMatch(/at most 1024 bytes/);
  });

  it('sit below their ancestors by whole segments', () => {
    expect(pathAncestors('a/b/c')).toEqual(['a/b', 'a']);
    expect(pathAncestors('a')).toEqual([]);
  });

  it('sort segment by segment in code point order, a path right before the paths below it', () => {
    const sorted = ['src', 'src/a', 'src/a/b', 'src/b', 'src-x', 'src\uffff', 'src😀'];
    expect([...sorted].reverse().sort(comparePaths)).toEqual(sorted);
  });
});
