// Cluster membership and encryption from one shared secret: TLS 1.3 with an external pre-shared key
// (RFC 8446 psk_dhe_ke) derived from the cluster secret, one key per purpose (peer wire, supernode
// API). Why TLS-PSK rather than a cluster CA or Noise: one secret is all an operator distributes
// (no certificates to issue, rotate or mount per host); the dialler proves knowledge of the key
// first, in its ClientHello binder, so a listener reveals nothing to a stranger, not even a
// certificate; every session still gets fresh (EC)DHE keys (forward secrecy); and it is Node's own
// OpenSSL with AES-GCM in hardware, the cheapest authenticated encryption on these CPUs. A PSK
// handshake seen on the wire lets an eavesdropper test guesses of the key offline, so the secret
// must be strong: `pollen secret` prints 256 random bits, and a weak secret is refused off loopback.
// Identities of single peers are not TLS's job here: the supernode issues each peer its own
// credential at registration (see supernode-api.ts).
import { hkdfSync, randomBytes } from 'node:crypto';
import type { ConnectionOptions, TlsOptions } from 'node:tls';

export type PskPurpose = 'wire' | 'api';

/** The one cipher suite: AES-128-GCM runs on AES-NI; the PSK's hash must match the suite's. */
const CIPHERS = 'TLS_AES_128_GCM_SHA256';
const IDENTITY = { wire: 'pollen-wire-v1', api: 'pollen-api-v1' } as const;
export const MIN_SECRET_CHARS = 32;

/** A new cluster secret: 32 random bytes, base64url (43 characters). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Why `secret` is too weak to guard a network listener, or undefined when it is strong enough. */
export function secretWeakness(secret: string | undefined): string | undefined {
  if (secret === undefined || secret === '') return 'no cluster secret is set';
  if (secret.length < MIN_SECRET_CHARS) return `the cluster secret has ${secret.length} characters; at least ${MIN_SECRET_CHARS} are needed (pollen secret prints one)`;
  if (new Set(secret).size < 8) return 'the cluster secret repeats too few characters to be random (pollen secret prints one)';
  return undefined;
}

/** Keys derived so far, by purpose and secret: every wire connection (dialled or accepted) needs one. */
const derived = new Map<string, Buffer>();

/** The pre-shared key for one purpose: HKDF-SHA256 of the secret, so wire and API keys differ. */
export function derivePsk(secret: string, purpose: PskPurpose): Buffer {
  const key = `${purpose}\0${secret}`;
  let psk = derived.get(key);
  if (!psk) {
    if (derived.size > 8) derived.clear();
    psk = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.from('pollen-cluster-psk'), Buffer.from(IDENTITY[purpose]), 32));
    derived.set(key, psk);
  }
  return psk;
}

/** Options for `tls.createServer` / fastify's `https`: only a client holding the key completes. */
export function pskServerOptions(secret: string, purpose: PskPurpose): TlsOptions {
  const psk = derivePsk(secret, purpose);
  const identity = IDENTITY[purpose];
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: CIPHERS,
    // A wrong identity gets no key: the handshake fails before the server has sent anything but its alert.
    pskCallback: (_socket, id) => (id === identity ? psk : null),
  };
}

/** Options for `tls.connect` / undici's `connect`: the client proves the key in its first flight. */
export function pskClientOptions(secret: string, purpose: PskPurpose): ConnectionOptions {
  const psk = derivePsk(secret, purpose);
  const identity = IDENTITY[purpose];
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: CIPHERS,
    pskCallback: () => ({ psk, identity }),
    // The PSK authenticates the server; there is no certificate or host name to check.
    checkServerIdentity: () => undefined,
  };
}
