import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config.ts';
import { PEER_SETTINGS, peerConfigFrom } from '../../../peer/config.ts';

const resolve = (flags: Record<string, unknown>) => peerConfigFrom(resolveConfig(PEER_SETTINGS, flags, {}));

describe('peer config', () => {
  it('serves metrics and health on their own loopback listener by default', () => {
    expect(resolve({}).metricsListen).toBe('127.0.0.1:65003');
    expect(resolve({ metricsListen: '127.0.0.1:0' }).metricsListen).toBe('127.0.0.1:0');
  });

  it.each([
    [{ upstream: 'http://alice:s3cret@registry.example:5000' }],
    [{ upstream: 'https://token@registry.example' }],
    [{ registry: ['registry.example=https://alice:s3cret@registry.example'] }],
  ])('refuses registry URLs with userinfo, pointing to --credentials, without echoing the password (%j)', (flags) => {
    let message = '';
    try {
      resolve(flags);
    } catch (err) {
      message = (err as Error).message;
      expect(err).toMatchObject({ code: 'ERR_INVALID_CONFIG' });
    }
    expect(message).toContain('--credentials');
    expect(message).not.toContain('s3cret');
    expect(message).not.toContain('token@');
  });

  it('refuses supernode URLs with userinfo', () => {
    expect(() => resolve({ supernode: ['http://peer:s3cret@127.0.0.1:8002'] })).toThrow(/--supernode URLs must not carry user:password@/);
  });

  it('still takes plain registry URLs and mappings', () => {
    const c = resolve({ upstream: 'http://127.0.0.1:5000/', registry: ['registry.example=https://mirror.internal:8443'] });
    expect(c.upstream).toBe('http://127.0.0.1:5000');
    expect(c.registries.get('registry.example')).toBe('https://mirror.internal:8443');
    expect(() => resolve({ registry: ['registry.example=ftp://x'] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }));
  });
});
