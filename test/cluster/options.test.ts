import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../src/config.ts';

describe('cluster: timing options', () => {
  it('take flags and the environment, and refuse a renewal that could not come before the deadline', () => {
    const c = resolveConfig(
      { leaseTtlMs: '2000', advertise: 'ws://node-a:7420/ws' },
      { LOCKSTEP_LEASE_RENEW_MS: '500' },
    );
    expect(c).toMatchObject({
      leaseTtlMs: 2000,
      leaseRenewMs: 500,
      leaseDriftMs: 500,
      advertise: 'ws://node-a:7420/ws',
    });
    expect(() => resolveConfig({ leaseTtlMs: '1000', leaseRenewMs: '600', leaseDriftMs: '400' }, {})).toThrow(
      ConfigError,
    );
    expect(() => resolveConfig({ advertise: 'http://node-a:7420/' }, {})).toThrow(/--advertise: must be a ws/);
  });
});
