// The wire address a peer registers: HOST:PORT other peers dial, so it must be nothing else (no
// scheme, path or userinfo; a port 1-65535; an IP or a DNS name). When the peer registers from a
// non-loopback address and names an IP, that IP must be the one it registers from: a member cannot
// point the others at a third party's host.
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

/** Refuses an IP wire host other than the address the peer registers from (loopback callers exempt). */
export function checkWireHost(addr: WireAddr, remoteIp: string): void {
  if (!addr.ip || isLoopbackIp(remoteIp)) return;
  const norm = (ip: string): string => (ip.startsWith('::ffff:') ? ip.slice(7) : ip).toLowerCase();
  if (norm(addr.host) !== norm(remoteIp)) bad(`host ${addr.host} is not the address this peer registers from (${remoteIp})`);
}
