// The registry list both daemons read (--upstream, --registry HOST=URL): parsing, validation as a
// config value, and the lookup that is all the supernode's seed may reach.
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../../src/config.ts';
import { parseHostMappings, RegistryHosts, validateHostMappings } from '../../../../src/oci/registry-hosts.ts';
import { SUPERNODE_SETTINGS, supernodeConfigFrom } from '../../../../supernode/config.ts';

describe('registry hosts', () => {
  it('maps each host key to its URL; the default upstream is reached by its own host; an explicit mapping wins', () => {
    const hosts = new RegistryHosts({
      defaultUpstream: 'http://127.0.0.1:5000/',
      registries: parseHostMappings(['registry.example=https://mirror.internal:8443/', 'docker.io = https://registry-1.docker.io']),
    });
    expect(hosts.baseUrlOf('registry.example')).toBe('https://mirror.internal:8443');
    expect(hosts.baseUrlOf('docker.io')).toBe('https://registry-1.docker.io');
    expect(hosts.baseUrlOf('127.0.0.1:5000')).toBe('http://127.0.0.1:5000');
    expect(new RegistryHosts({ defaultUpstream: 'http://127.0.0.1:5000', registries: new Map([['127.0.0.1:5000', 'http://10.0.0.1:5000']]) }).baseUrlOf('127.0.0.1:5000')).toBe('http://10.0.0.1:5000');
  });

  it('refuses anything else: an unknown host names the flag to add, a URL or a path is not a host', () => {
    const hosts = new RegistryHosts({ defaultUpstream: undefined, registries: new Map([['registry.example', 'https://r']]) });
    expect(() => hosts.baseUrlOf('other.example', 'the supernode')).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_UPSTREAM', message: expect.stringMatching(/the supernode .*--registry other.example=URL/) }));
    for (const bad of ['http://registry.example', 'registry.example/x', 'registry.example@evil', '', 'a b', 'registry.example:99999999']) {
      expect(() => hosts.baseUrlOf(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }));
    }
    expect(new RegistryHosts({ defaultUpstream: undefined, registries: new Map() }).hosts).toEqual([]);
  });

  it('as a supernode setting, refuses entries without HOST=, URLs with credentials, and non-http URLs, naming the key', () => {
    const validate = validateHostMappings('--registry', { urls: true });
    expect(validate(['registry.example=https://r.example'])).toBeUndefined();
    expect(validate(['=https://r.example'])).toMatch(/HOST=VALUE/);
    expect(validate(['registry.example=https://user:pw@r.example'])).toMatch(/credentials do not belong/);
    expect(validate(['registry.example=file:///etc'])).toMatch(/http\(s\) URL/);
    expect(validate(['http://x=https://r.example'])).toMatch(/not a registry host/);
    expect(() => resolveConfig(SUPERNODE_SETTINGS, { registry: ['r.example=https://u:p@r.example'] }, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', message: expect.stringMatching(/invalid registry/) }));
    expect(() => resolveConfig(SUPERNODE_SETTINGS, { upstream: 'http://u:p@127.0.0.1:5000' }, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', message: expect.stringMatching(/invalid upstream/) }));
    const config = supernodeConfigFrom(resolveConfig(SUPERNODE_SETTINGS, { upstream: 'http://127.0.0.1:5000/', registry: ['r.example=https://r.example/'] }, {}));
    expect(config.upstream).toBe('http://127.0.0.1:5000');
    expect([...config.registries!]).toEqual([['r.example', 'https://r.example']]);
    expect(config.seedMaxBlobBytes).toBe(64 * 1024 ** 3);
  });
});
