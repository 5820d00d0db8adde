import { describe, expect, it } from 'vitest';
import { Upstreams } from '../../../../peer/mirror/upstreams.ts';

describe('Upstreams', () => {
  const upstreams = new Upstreams({
    defaultUpstream: 'http://127.0.0.1:5000',
    registries: new Map([['registry.example', 'https://mirror-of-registry.internal:8443']]),
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

  it('sends proxy requests to the URL they name', () => {
    expect(upstreams.resolve({ proxyOrigin: 'http://10.0.0.9:5000', ns: 'ignored' }).baseUrl).toBe('http://10.0.0.9:5000');
  });

  it('refuses an unknown or malformed ns with a message that says how to configure it', () => {
    expect(() => upstreams.resolve({ ns: 'other.example' })).toThrow(/--registry other.example=URL/);
    expect(() => upstreams.resolve({ ns: 'bad host' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }));
    expect(() => new Upstreams({ defaultUpstream: undefined, registries: new Map(), credentials: new Map() }).resolve({})).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_UPSTREAM' }),
    );
  });
});
