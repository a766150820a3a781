import { LockstepClientError } from './errors.ts';

/** `promise`, or ABORTED as soon as `signal` aborts (the work itself is not stopped). */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal, method: string): Promise<T> {
  if (signal.aborted) return Promise.reject(LockstepClientError.local('ABORTED', `${method} aborted`, method));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(LockstepClientError.local('ABORTED', `${method} aborted`, method));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Waits `ms` (nothing when not positive), or rejects ABORTED as soon as `signal` aborts. */
export function pause(ms: number, signal: AbortSignal | undefined, method: string): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  const wait = new Promise<void>((resolve) => setTimeout(resolve, ms));
  return signal === undefined ? wait : abortable(wait, signal, method);
}
