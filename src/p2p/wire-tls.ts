// The wire's transport: with a cluster secret, TLS 1.3 with the pre-shared key derived for the wire
// (src/cluster-tls.ts). The dialler proves the key in its ClientHello (the PSK binder); a listener
// facing anything else (no key, another key, random bytes, plain BitTorrent) sends at most a TLS
// alert and closes, before it has seen an info hash, so a stranger learns nothing, not even
// whether this peer holds a blob. Without a secret the wire is plain TCP, which the CLI allows
// only on loopback (wireExposure).
import { connect as tcpConnect, type OnReadOpts, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { pskClientOptions, pskServerOptions, secretWeakness } from '../cluster-tls.ts';
import { splitHostPort } from '../config.ts';

/** Secure contexts by secret: building one per connection costs more than the handshake. */
const contexts = new Map<string, SecureContext>();

function contextFor(secret: string, side: 'server' | 'client'): SecureContext {
  const key = `${side}\0${secret}`;
  let ctx = contexts.get(key);
  if (!ctx) {
    if (contexts.size > 8) contexts.clear();
    ctx = createSecureContext(side === 'server' ? pskServerOptions(secret, 'wire') : pskClientOptions(secret, 'wire'));
    contexts.set(key, ctx);
  }
  return ctx;
}

/** The listening side of an accepted TCP socket: TLS with the wire key, or the socket itself without a secret. */
export function secureIncoming(socket: Socket, secret: string): Socket {
  if (secret === '') return socket;
  const options = pskServerOptions(secret, 'wire');
  return new TLSSocket(socket, { ...options, isServer: true, secureContext: contextFor(secret, 'server') });
}

/** True once the transport is authenticated: at once for plain TCP, on 'secure' for TLS. */
export function whenSecure(socket: Socket, onSecure: () => void): void {
  if (socket instanceof TLSSocket) socket.once('secure', onSecure);
  else onSecure();
}

/**
 * Dials HOST:PORT (IPv6 in brackets); with a secret over TLS. Writes before the handshake are queued.
 * `onread`: the socket reads into the given buffer and calls back instead of emitting 'data'.
 */
export function dialWire(wireAddr: string, secret: string, onread?: OnReadOpts): Socket {
  const { host, port } = splitHostPort(wireAddr);
  if (secret === '') return tcpConnect({ port, host, ...(onread ? { onread } : {}) });
  return tlsConnect({ ...pskClientOptions(secret, 'wire'), host, port, secureContext: contextFor(secret, 'client'), ...(onread ? { onread } : {}) });
}

/** True for a host that is only reachable from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Why a wire listening on `listen` with `secret` would be open to the network, or undefined when it
 * is safe: off loopback the secret must be strong (it is the TLS key: a weak one can be guessed
 * offline from one recorded handshake).
 */
export function wireExposure(listen: string, secret: string): string | undefined {
  const { host } = splitHostPort(listen);
  if (isLoopbackHost(host)) return undefined;
  return secretWeakness(secret);
}
