// The wire address a peer registers: HOST:PORT other peers dial, so it must be nothing else (no
// scheme, path or userinfo; a port 1-65535; an IP or a DNS name). When the peer registers from a
// non-loopback address, the host must lead back to it: an IP must be the address it registers from,
// a DNS name must resolve to that address (among its addresses). A member cannot point the others
// at a third party's host, by address or by name.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { PollenError } from '../../src/errors.ts';

const HOSTNAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const PORT = /^[1-9][0-9]{0,4}$/;

export interface WireAddr {
  readonly host: string;
  readonly port: number;
  readonly ip: boolean;
}

function bad(why: string): never {
  throw new PollenError('ERR_INVALID_REQUEST', `wireAddr ${why}`);
}

export function parseWireAddr(s: string): WireAddr {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([^:]+)$/.exec(s);
  if (!m) return bad('must be HOST:PORT or [IPv6]:PORT');
  const host = m[1] ?? m[2]!;
  const portText = m[3]!;
  const port = Number(portText);
  if (!PORT.test(portText) || port > 65_535) return bad('needs a port from 1 to 65535');
  const family = isIP(host);
  if (m[1] !== undefined && family !== 6) return bad('has brackets around something that is not an IPv6 address');
  if (family === 0 && !HOSTNAME.test(host)) return bad('host must be an IP address or a DNS name');
  if (family === 0 && /^[0-9.]+$/.test(host)) return bad('host is neither a valid IPv4 address nor a DNS name');
  if (host === '0.0.0.0' || host === '::' || host === '255.255.255.255') return bad('host must be an address other peers can dial');
  return { host, port, ip: family !== 0 };
}

export function isLoopbackIp(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  return v4 === '::1' || /^127\./.test(v4);
}

/** Every address a DNS name resolves to. */
export type LookupAll = (host: string) => Promise<string[]>;

/** The system resolver, as the peers that dial the name use it. */
const systemLookupAll: LookupAll = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/** How long a registration waits for its wire host's DNS answer. */
export const WIRE_LOOKUP_TIMEOUT_MS = 3_000;

const normIp = (ip: string): string => (ip.startsWith('::ffff:') ? ip.slice(7) : ip).toLowerCase();

/**
 * Refuses a wire host that does not lead back to the address the peer registers from (loopback
 * callers exempt): an IP must be that address, a DNS name must resolve to it.
 */
export async function checkWireHost(addr: WireAddr, remoteIp: string, lookupAll: LookupAll = systemLookupAll): Promise<void> {
  if (isLoopbackIp(remoteIp)) return;
  const remote = normIp(remoteIp);
  if (addr.ip) {
    if (normIp(addr.host) !== remote) bad(`host ${addr.host} is not the address this peer registers from (${remoteIp})`);
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  let addresses: string[];
  try {
    addresses = await Promise.race([
      lookupAll(addr.host),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEOUT' })), WIRE_LOOKUP_TIMEOUT_MS);
        timer.unref();
      }),
    ]);
  } catch (err) {
    return bad(`host ${addr.host} does not resolve (${(err as { code?: string }).code ?? (err as Error).message})`);
  } finally {
    clearTimeout(timer);
  }
  if (!addresses.some((a) => normIp(a) === remote)) {
    bad(`host ${addr.host} resolves to ${addresses.slice(0, 4).join(', ') || 'nothing'}, not to the address this peer registers from (${remoteIp})`);
  }
}
