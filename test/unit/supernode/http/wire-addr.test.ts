import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitHostPort } from '../../../../src/config.ts';
import { checkClusterListen } from '../../../../supernode/http/listen-policy.ts';
import { checkWireHost, parseWireAddr } from '../../../../supernode/http/wire-addr.ts';

describe('wire addresses peers register', () => {
  it('accepts HOST:PORT with an IPv4, a bracketed IPv6 or a DNS name and a port from 1 to 65535', () => {
    expect(parseWireAddr('10.0.0.7:65002')).toEqual({ host: '10.0.0.7', port: 65002, ip: true });
    expect(parseWireAddr('[fd00::7]:1')).toEqual({ host: 'fd00::7', port: 1, ip: true });
    expect(parseWireAddr('peer-7.example:65535')).toEqual({ host: 'peer-7.example', port: 65535, ip: false });
  });

  it('refuses anything else with ERR_INVALID_REQUEST', () => {
    for (const bad of ['http://x:1', 'x:1/path', 'user@x:1', 'user:pw@x:1', 'x', 'x:', ':1', 'x:0', 'x:65536', 'x:01', 'x:+1', 'x:1e3', 'fd00::7:1', '[x]:1', '[10.0.0.1]:1', '1.2.3:4', '999.1.1.1:4', '0.0.0.0:1', '[::]:1', 'x y:1', '-x:1', 'x..y:1', `${'a'.repeat(64)}:1`, 'x:1 ', ' x:1', 'x:1\n']) {
      expect(() => parseWireAddr(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }));
    }
  });

  it('whatever it accepts, the peers can split into a host and a port again (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.tuple(fc.oneof(fc.ipV4(), fc.ipV6().map((v) => `[${v}]`), fc.domain(), fc.string({ maxLength: 10 })), fc.oneof(fc.integer({ min: -1, max: 70_000 }).map(String), fc.string({ maxLength: 6 }))).map(([h, p]) => `${h}:${p}`)), (s) => {
        let parsed;
        try {
          parsed = parseWireAddr(s);
        } catch {
          return;
        }
        const again = splitHostPort(s);
        expect(again).toEqual({ host: parsed.host, port: parsed.port });
        expect(parsed.port).toBeGreaterThan(0);
        expect(parsed.port).toBeLessThan(65_536);
      }),
      { numRuns: 2_000 },
    );
  });

  it('an IP host must be the address the peer registers from, unless it registers over loopback', async () => {
    await expect(checkWireHost(parseWireAddr('10.0.0.9:1'), '10.0.0.8')).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    await expect(checkWireHost(parseWireAddr('10.0.0.8:1'), '10.0.0.8')).resolves.toBeUndefined();
    await expect(checkWireHost(parseWireAddr('10.0.0.8:1'), '::ffff:10.0.0.8')).resolves.toBeUndefined();
    await expect(checkWireHost(parseWireAddr('10.0.0.9:1'), '127.0.0.1')).resolves.toBeUndefined();
  });

  it('a DNS host must resolve to the address the peer registers from; one that does not, or does not resolve, is refused', async () => {
    const zone: Record<string, string[]> = { 'peer-a.cluster.test': ['10.0.0.7', '10.0.0.8'], 'db.corp.test': ['10.9.9.9'] };
    const lookupAll = async (host: string): Promise<string[]> => {
      const a = zone[host];
      if (!a) throw Object.assign(new Error(`no such host ${host}`), { code: 'ENOTFOUND' });
      return a;
    };
    await expect(checkWireHost(parseWireAddr('peer-a.cluster.test:65002'), '10.0.0.8', lookupAll)).resolves.toBeUndefined();
    await expect(checkWireHost(parseWireAddr('peer-a.cluster.test:65002'), '::ffff:10.0.0.8', lookupAll)).resolves.toBeUndefined();
    await expect(checkWireHost(parseWireAddr('db.corp.test:6379'), '10.0.0.8', lookupAll)).rejects.toThrow(/resolves to 10\.9\.9\.9, not to the address this peer registers from/);
    await expect(checkWireHost(parseWireAddr('gone.test:65002'), '10.0.0.8', lookupAll)).rejects.toThrow(/does not resolve \(ENOTFOUND\)/);
    // Over loopback (a single host's cluster, the tests) a name is taken as it is.
    await expect(checkWireHost(parseWireAddr('db.corp.test:6379'), '127.0.0.1', lookupAll)).resolves.toBeUndefined();
  });
});

describe('where the cluster API may listen', () => {
  it('off loopback only with a strong secret; on loopback always', () => {
    const strong = 'Zq8vN3kP0sLw7Rt2Yx5Hc9Bm4Jd6Gf1A';
    expect(() => checkClusterListen('0.0.0.0:8002', undefined)).toThrow(/pollen secret/);
    expect(() => checkClusterListen('10.0.0.1:8002', 'short')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }));
    expect(() => checkClusterListen('0.0.0.0:8002', strong)).not.toThrow();
    for (const lo of ['127.0.0.1:8002', '[::1]:8002', 'localhost:8002']) expect(() => checkClusterListen(lo, undefined)).not.toThrow();
  });
});
