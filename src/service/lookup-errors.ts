import { LockstepError } from '../protocol/errors.ts';

export function notFound(message: string, details: Record<string, unknown>): LockstepError {
  return new LockstepError('NOT_FOUND', message, details);
}

export function notFoundThrow(message: string, details: Record<string, unknown>): never {
  throw notFound(message, details);
}

/** An expected-hash key names a function by its decimal id. */
export function parseFunctionKey(key: string): number {
  const id = /^[1-9][0-9]*$/.test(key) ? Number(key) : Number.NaN;
  if (!Number.isSafeInteger(id)) {
    const reason = `expected hash key "${key}" is not a function id`;
    throw new LockstepError('INVALID_EDIT', reason, { reason });
  }
  return id;
}
