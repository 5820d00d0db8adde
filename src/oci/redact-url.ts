// URLs that may carry secrets: `user:password@` userinfo, and the query of a redirect to blob
// storage (a presigned URL's signature is a credential for as long as it lives). Such URLs are cut
// down before they reach a log line or an error body.

/** The URL without userinfo, and without its query string (replaced by `?…`) when it had one. */
export function redactUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    // Not a URL: keep nothing that looks like userinfo.
    return raw.replace(/\/\/[^/@\s]*@/g, '//').replace(/\?.*$/s, '?…');
  }
  if (u.username === '' && u.password === '' && u.search === '' && u.hash === '') return raw;
  u.username = '';
  u.password = '';
  const query = u.search ? '?…' : '';
  u.search = '';
  u.hash = '';
  return `${u.toString()}${query}`;
}

/** True when the URL carries `user[:password]@`. */
export function hasUserinfo(raw: string): boolean {
  try {
    const u = new URL(raw);
    return u.username !== '' || u.password !== '';
  } catch {
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(raw);
  }
}

/** Splits `scheme://user:password@host/...` into the URL without userinfo and the credentials it held. */
export function splitUserinfo(raw: string): { url: string; credentials: { username: string; password: string } | undefined } {
  const u = new URL(raw);
  if (u.username === '' && u.password === '') return { url: raw, credentials: undefined };
  const credentials = { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
  u.username = '';
  u.password = '';
  return { url: u.toString(), credentials };
}

/** The origin (scheme, host, port) of an absolute URL, for same-origin decisions. */
export function originOf(raw: string): string {
  return new URL(raw).origin;
}
