import { describe, expect, it } from 'vitest';
import { Upstreams } from '../../../../peer/mirror/upstreams.ts';

describe('Upstreams', () => {
  const upstreams = new Upstreams({
    defaultUpstream: 'http://127.0.0.1:5000',
    registries: new Map([
      ['registry.example', 'https://mirror-of-registry.internal:8443'],
      ['plain.example:5000', 'http://10.0.0.7:5000'],
    ]),
    credentials: new Map([['registry.example', 'bot:secret']]),
  });

  it('maps ns through --registry, with that host’s static credentials', () => {
    expect(upstreams.resolve({ ns: 'registry.example' })).toEqual({
      host: 'registry.example',
      baseUrl: 'https://mirror-of-registry.internal:8443',
      staticAuthorization: `Basic ${Buffer.from('bot:secret').toString('base64')}`,
    });
  });

  it('uses the default upstream without ns, or when ns names it', () => {
    expect(upstreams.resolve({}).baseUrl).toBe('http://127.0.0.1:5000');
    expect(upstreams.resolve({ ns: '127.0.0.1:5000' }).baseUrl).toBe('http://127.0.0.1:5000');
  });

  it('sends proxy requests for a configured registry to its configured URL (by HOST or by the URL’s own host)', () => {
    expect(upstreams.resolve({ proxyHost: 'registry.example', ns: 'ignored' }).baseUrl).toBe('https://mirror-of-registry.internal:8443');
    expect(upstreams.resolve({ proxyHost: 'REGISTRY.example' }).baseUrl).toBe('https://mirror-of-registry.internal:8443');
    expect(upstreams.resolve({ proxyHost: 'mirror-of-registry.internal:8443' }).baseUrl).toBe('https://mirror-of-registry.internal:8443');
    expect(upstreams.resolve({ proxyHost: '127.0.0.1:5000' }).baseUrl).toBe('http://127.0.0.1:5000');
  });

  it.each(['10.0.0.9:5000', '127.0.0.1:5001', '127.0.0.1', 'localhost:8002', 'registry.example:444', 'mirror-of-registry.internal'])('refuses a proxy request for %s, a host nobody configured', (host) => {
    expect(() => upstreams.resolve({ proxyHost: host })).toThrow(expect.objectContaining({ code: 'ERR_PROXY_TARGET_DENIED' }));
  });

  it('tunnels CONNECT to configured registries only, to the address configured for them', () => {
    expect(upstreams.tunnelTarget('registry.example:443')).toEqual({ host: 'mirror-of-registry.internal', port: 8443 });
    expect(upstreams.tunnelTarget('mirror-of-registry.internal:8443')).toEqual({ host: 'mirror-of-registry.internal', port: 8443 });
    expect(upstreams.tunnelTarget('plain.example:5000')).toEqual({ host: '10.0.0.7', port: 5000 });
    expect(upstreams.tunnelTarget('127.0.0.1:5000')).toEqual({ host: '127.0.0.1', port: 5000 });
    for (const refused of ['127.0.0.1:8002', '127.0.0.1:65002', 'registry.example:22', 'plain.example:443', 'evil.example:443', '', 'registry.example', '[::1]:5000', 'a b:1']) {
      expect(upstreams.tunnelTarget(refused), refused).toBeUndefined();
    }
  });

  it('refuses an unknown or malformed ns with a message that says how to configure it', () => {
    expect(() => upstreams.resolve({ ns: 'other.example' })).toThrow(/--registry other.example=URL/);
    expect(() => upstreams.resolve({ ns: 'bad host' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }));
    expect(() => new Upstreams({ defaultUpstream: undefined, registries: new Map(), credentials: new Map() }).resolve({})).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_UPSTREAM' }),
    );
  });
});
