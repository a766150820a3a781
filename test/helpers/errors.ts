import { expect } from 'vitest';
import { LockstepError } from '../../src/protocol/errors.ts';

/** Runs `fn`, expecting a LockstepError of `type`; returns it for further checks. */
export function expectError(fn: () => unknown, type: LockstepError['type']): LockstepError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LockstepError);
    expect((err as LockstepError).type).toBe(type);
    return err as LockstepError;
  }
  throw new Error(`expected ${type}, nothing was thrown`);
}
