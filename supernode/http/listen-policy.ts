// Where the cluster API may listen: anywhere with a strong cluster secret (the listener is then
// TLS 1.3 with a key derived from it, and only members complete a handshake); without one, only
// on loopback, where reaching the port is what membership means (`pollen start`, tests).
import { secretWeakness } from '../../src/cluster-tls.ts';
import { splitHostPort } from '../../src/config.ts';
import { PollenError } from '../../src/errors.ts';

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Throws when the cluster API would listen off loopback without a strong secret. */
export function checkClusterListen(listen: string, secret: string | undefined): void {
  const { host } = splitHostPort(listen);
  if (isLoopbackHost(host)) return;
  const why = secretWeakness(secret);
  if (why === undefined) return;
  throw new PollenError(
    'ERR_INVALID_CONFIG',
    `the supernode API would listen on ${listen}, off loopback, and ${why}: give the supernode and every peer the same strong --secret (POLLEN_SECRET); \`pollen secret\` prints one`,
    { key: 'secret' },
  );
}
