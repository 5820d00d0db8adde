// The peer's --disk-quota and --blob-ttl rows: validated at start with an error naming the key.
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config.ts';
import { isPollenError } from '../../../src/errors.ts';
import { PEER_SETTINGS, peerConfigFrom } from '../../../peer/config.ts';

describe('peer config: disk quota and blob TTL', () => {
  it('defaults to 80 % of the filesystem and no expiry', () => {
    const c = peerConfigFrom(resolveConfig(PEER_SETTINGS, {}, {}));
    expect(c.diskQuota).toBe('80%');
    expect(c.blobTtlMs).toBe(0);
  });

  it('takes sizes, percentages and durations from flags and the environment', () => {
    const c = peerConfigFrom(resolveConfig(PEER_SETTINGS, { diskQuota: '20GiB' }, { POLLEN_BLOB_TTL: '6h' }));
    expect(c.diskQuota).toBe('20GiB');
    expect(c.blobTtlMs).toBe(6 * 3_600_000);
  });

  it.each([
    ['diskQuota', 'lots'],
    ['diskQuota', '150%'],
    ['blobTtl', '6 hours'],
  ])('refuses %s = %j, naming the setting', (key, value) => {
    expect(() => resolveConfig(PEER_SETTINGS, { [key]: value }, {})).toThrow(expect.toSatisfy((e) => isPollenError(e, 'ERR_INVALID_CONFIG') && e.message.includes(key)));
  });
});
