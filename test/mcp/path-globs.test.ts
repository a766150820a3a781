import { describe, expect, it } from 'vitest';
import { coveringPath, coveringPaths, expandBraces } from '../../src/mcp/path-globs.ts';

describe('globs to covering paths', () => {
  it('a glob is covered by the directory of its literal leading segments', () => {
    expect(coveringPath('src/**')).toBe('src');
    expect(coveringPath('src/*.ts')).toBe('src');
    expect(coveringPath('src/app/**/test?.ts')).toBe('src/app');
    expect(coveringPath('src/[ab].ts')).toBe('src');
    expect(coveringPath('src/app/main.ts')).toBe('src/app/main.ts');
    expect(coveringPath('src/')).toBe('src');
    expect(coveringPath('./src/app')).toBe('src/app');
    expect(coveringPath('**/*.ts')).toBeUndefined();
    expect(coveringPath('*.md')).toBeUndefined();
  });

  it('braces are expanded, each alternative covered on its own', () => {
    expect(expandBraces('src/{a,b}/x.ts')).toEqual(['src/a/x.ts', 'src/b/x.ts']);
    expect(expandBraces('{lib,src/{a,b}}/**')).toEqual(['lib/**', 'src/a/**', 'src/b/**']);
    expect(expandBraces('src/{a')).toEqual(['src/{a']);
    expect(coveringPaths(['src/{a,b}/*.ts']).paths).toEqual(['src/a', 'src/b']);
  });

  it('the smallest set: each path once, none below another (by whole segments)', () => {
    const c = coveringPaths(['src/a/x.ts', 'src/**', 'src/a/y.ts', 'srcs/b.ts', 'docs/*.md']);
    expect(c.paths).toEqual(['docs', 'src', 'srcs/b.ts']);
    expect(c.widened).toEqual([
      { pattern: 'src/**', paths: ['src'] },
      { pattern: 'docs/*.md', paths: ['docs'] },
    ]);
    expect(c.unbounded).toEqual([]);
    expect(coveringPaths(['src/a', 'src/ab']).paths).toEqual(['src/a', 'src/ab']);
  });

  it('a pattern that would cover the whole repository is set apart, not locked', () => {
    const c = coveringPaths(['*.md', 'src/x.ts']);
    expect(c.paths).toEqual(['src/x.ts']);
    expect(c.unbounded).toEqual(['*.md']);
  });
});
