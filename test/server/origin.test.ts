import type { IncomingMessage } from 'node:http';
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { originAllowed, serverHostNames } from '../../src/transport/origin.ts';

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
const none = new Set<string>();

describe('origin and host checks', () => {
  it("let a dashboard opened on any of the machine's addresses in when bound to every interface", () => {
    const names = serverHostNames('0.0.0.0');
    const ip =
      Object.values(networkInterfaces())
        .flat()
        .find((a) => a?.family === 'IPv4' && !a.internal)?.address ?? '127.0.0.1';
    expect(originAllowed(req({ origin: `http://${ip}:7420`, host: `${ip}:7420` }), names, none)).toBe(true);
    expect(originAllowed(req({ origin: 'http://evil.example:7420', host: 'evil.example:7420' }), names, none)).toBe(
      false,
    );
  });

  it('know only loopback and the bound address otherwise', () => {
    const names = serverHostNames('127.0.0.1');
    expect(originAllowed(req({ origin: 'http://localhost:7420', host: 'localhost:7420' }), names, none)).toBe(true);
    expect(originAllowed(req({ origin: 'http://[::1]:7420', host: '[::1]:7420' }), names, none)).toBe(true);
    expect(originAllowed(req({ origin: 'http://10.1.2.3:7420', host: '10.1.2.3:7420' }), names, none)).toBe(false);
    expect(
      originAllowed(
        req({ origin: 'https://ops.example', host: '127.0.0.1:7420' }),
        names,
        new Set(['https://ops.example']),
      ),
    ).toBe(true);
    expect(originAllowed(req({ host: 'anything:1' }), names, none)).toBe(true);
  });
});
