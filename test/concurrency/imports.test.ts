import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dir = new URL('../../src/concurrency/', import.meta.url);
const ALLOWED = [/^\.\/[a-z-]+\.ts$/, /^\.\.\/protocol\/[a-z-]+\.ts$/, /^eventemitter3$/, /^uuid$/, /^node:crypto$/];

describe('src/concurrency', () => {
  it('imports nothing but its own files, src/protocol, eventemitter3, uuid and node:crypto', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const text = readFileSync(new URL(file, dir), 'utf8');
      const specifiers = [...text.matchAll(/^(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);
      for (const s of specifiers)
        expect(
          ALLOWED.some((re) => re.test(s)),
          `${file} imports ${s}`,
        ).toBe(true);
      expect(text).not.toMatch(/\brequire\(|import\(/);
    }
  });
});
