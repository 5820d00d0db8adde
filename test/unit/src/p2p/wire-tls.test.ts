// Which wire addresses need a strong secret, and the wire key being one per purpose.
import { describe, expect, it } from 'vitest';
import { derivePsk, generateSecret, MIN_SECRET_CHARS, secretWeakness } from '../../../../src/cluster-tls.ts';
import { isLoopbackHost, wireExposure } from '../../../../src/p2p/wire-tls.ts';

describe('wire exposure', () => {
  it('knows loopback hosts from the rest', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '[::]', '10.0.0.1', '128.0.0.1', 'host.example', '127.0.0.1.example']) expect(isLoopbackHost(h)).toBe(false);
  });

  it('allows any secret on loopback and only a strong one elsewhere', () => {
    expect(wireExposure('127.0.0.1:65002', '')).toBeUndefined();
    expect(wireExposure('[::1]:65002', 'weak')).toBeUndefined();
    expect(wireExposure('0.0.0.0:65002', '')).toMatch(/no cluster secret/);
    expect(wireExposure('[::]:65002', 'x'.repeat(MIN_SECRET_CHARS))).toMatch(/too few characters/);
    expect(wireExposure('10.0.0.1:65002', 'short')).toMatch(/at least 32/);
    expect(wireExposure('10.0.0.1:65002', generateSecret())).toBeUndefined();
  });

  it('a generated secret is strong, and its wire and API keys differ', () => {
    const s = generateSecret();
    expect(secretWeakness(s)).toBeUndefined();
    expect(derivePsk(s, 'wire').equals(derivePsk(s, 'api'))).toBe(false);
    expect(derivePsk(s, 'wire').equals(derivePsk(generateSecret(), 'wire'))).toBe(false);
  });
});
