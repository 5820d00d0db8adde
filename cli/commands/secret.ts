// `pollen secret`: prints a fresh cluster secret (256 random bits) to give every supernode and peer
// (--secret / POLLEN_SECRET). It is the key of the wire's TLS, so a peer refuses to run P2P on a
// network address with no secret or a weak one (requireSafeWire).
import type { Command } from 'commander';
import { generateSecret } from '../../src/cluster-tls.ts';
import { PollenError } from '../../src/errors.ts';
import { wireExposure } from '../../src/p2p/wire-tls.ts';

export function registerSecret(program: Command): void {
  program
    .command('secret')
    .description('print a new random cluster secret for --secret / POLLEN_SECRET (the same on every supernode and peer)')
    .action(() => {
      process.stdout.write(`${generateSecret()}\n`);
    });
}

/** Refuses a P2P wire on a non-loopback address without a strong secret; names the settings to change. */
export function requireSafeWire(config: { readonly wire: string; readonly secret: string }): void {
  const why = wireExposure(config.wire, config.secret)?.replace(/ \(pollen secret prints one\)$/, '');
  if (why === undefined) return;
  throw new PollenError(
    'ERR_INVALID_CONFIG',
    `refusing to run the peer wire on ${config.wire} (--wire / POLLEN_WIRE): ${why}. ` +
      'Anyone who reaches that address could fetch every blob this peer holds. Give every supernode and peer ' +
      'the same strong --secret / POLLEN_SECRET (`pollen secret` prints one), or keep the wire on loopback (--wire 127.0.0.1:65002)',
    { key: 'wire' },
  );
}
