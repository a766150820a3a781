import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Role } from '../concurrency/index.ts';

const ROLES: readonly Role[] = ['agent', 'observer'];

/** Shorter tokens are guessable by brute force over the network; refuse them at start-up. */
export const MIN_TOKEN_LENGTH = 16;

export class TokenError extends Error {
  override name = 'TokenError';
}

/**
 * Access tokens and the role each grants. Tokens are kept as SHA-256 digests and every check
 * compares against all of them with timingSafeEqual, so neither a token's content nor its position
 * in the list shows in the response time.
 */
export class Tokens {
  private readonly entries: Array<{ digest: Buffer; role: Role }> = [];

  /**
   * The tokens of a tokens file (one "ROLE TOKEN" a line) and of a "ROLE:TOKEN,..." list: either,
   * both or none. `names` are how messages name the two (the options they come from).
   */
  static load(
    from: { file?: string | undefined; list?: string | undefined },
    names: { file: string; list: string },
  ): Tokens {
    const tokens = new Tokens();
    if (from.file !== undefined) tokens.addFile(readTokensFile(from.file, names.file), from.file);
    if (from.list !== undefined) tokens.addList(from.list, names.list);
    return tokens;
  }

  get size(): number {
    return this.entries.length;
  }

  add(role: string, token: string, where: string): void {
    if (!(ROLES as readonly string[]).includes(role))
      throw new TokenError(`${where}: unknown role "${role}" (use ${ROLES.join(' or ')})`);
    if (token.length < MIN_TOKEN_LENGTH)
      throw new TokenError(`${where}: tokens must have at least ${MIN_TOKEN_LENGTH} characters`);
    this.entries.push({ digest: digest(token), role: role as Role });
  }

  /** A tokens file: one "ROLE TOKEN" per line; blank lines and lines starting with # are skipped. */
  addFile(text: string, path: string): void {
    text.split(/\r?\n/).forEach((line, i) => {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#')) return;
      const [role, token, extra] = trimmed.split(/\s+/);
      if (token === undefined || extra !== undefined) throw new TokenError(`${path}:${i + 1}: expected "ROLE TOKEN"`);
      this.add(role ?? '', token, `${path}:${i + 1}`);
    });
  }

  /** "ROLE:TOKEN,ROLE:TOKEN", as LOCKSTEP_TOKENS holds them. */
  addList(list: string, source: string): void {
    list.split(',').forEach((item, i) => {
      const at = item.indexOf(':');
      if (at < 0) throw new TokenError(`${source} item ${i + 1}: expected "ROLE:TOKEN"`);
      this.add(item.slice(0, at).trim(), item.slice(at + 1).trim(), `${source} item ${i + 1}`);
    });
  }

  /** The role the token grants, or undefined. */
  roleOf(token: string): Role | undefined {
    const d = digest(token);
    let found: Role | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, d) && found === undefined) found = e.role;
    return found;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function readTokensFile(path: string, name: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const why = err instanceof Error && 'code' in err && err.code === 'ENOENT' ? 'no such file' : String(err);
    throw new TokenError(`${name}: cannot read ${JSON.stringify(path)}: ${why}`);
  }
}
