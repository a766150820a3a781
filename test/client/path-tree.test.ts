import { describe, expect, it } from 'vitest';
import { pathTree, pathTreeLines } from '../../src/client/path-tree.ts';

describe('path locks as a tree', () => {
  it('nests locks by segment, sorted, joins lone directories, and describes each lock', () => {
    const tree = pathTree([
      { path: 'src/app/main.ts', lock: 'read by dave' },
      { path: 'src', lock: 'write by alice; 1 waiting' },
      { path: 'docs/guide/intro.md', lock: 'write by bob' },
      { path: 'src/app/util.ts', lock: 'write by carol' },
    ]);
    expect(tree.map((n) => n.path)).toEqual(['docs', 'src']);
    expect(pathTreeLines(tree, (l) => l)).toEqual([
      'docs/guide/intro.md  write by bob',
      'src/  write by alice; 1 waiting',
      '  app/',
      '    main.ts  read by dave',
      '    util.ts  write by carol',
    ]);
  });
});
