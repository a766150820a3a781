import { expect } from 'vitest';
import { LockstepError } from '../../src/protocol/errors.ts';

/** Runs `fn`, expecting a LockstepError of `type`; returns it for further checks. */
export function expectError(fn: () => unknown, type: LockstepError['type']): LockstepError {
  try {
    fn();
  } catch (err) {
    return checked(err, type);
  }
  throw new Error(`expected ${type}, nothing was thrown`);
}

/** As expectError, for a call that may answer with a promise (the program service). */
export async function expectRejection(fn: () => unknown, type: LockstepError['type']): Promise<LockstepError> {
  try {
    await fn();
  } catch (err) {
    return checked(err, type);
  }
  throw new Error(`expected ${type}, nothing was thrown`);
}

function checked(err: unknown, type: LockstepError['type']): LockstepError {
  expect(err).toBeInstanceOf(LockstepError);
  expect((err as LockstepError).type).toBe(type);
  return err as LockstepError;
}
