// Repository names, tags and references, by the grammar of the OCI distribution spec and
// distribution/reference.
import { PollenError } from '../errors.ts';
import { isDigestLike, parseDigest, type Digest } from '../digest.ts';

const NAME_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const NAME = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG = /^[\w][\w.-]{0,127}$/;
export const MAX_NAME_LENGTH = 255;

export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

export function parseName(name: string): string {
  if (!isValidName(name)) {
    throw new PollenError('ERR_INVALID_NAME', `invalid repository name ${JSON.stringify(name.slice(0, 100))}`, { name: name.slice(0, 100) });
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** A manifest reference: a tag or a digest. */
export type ManifestRef = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

export function parseManifestRef(ref: string): ManifestRef {
  if (ref.includes(':')) {
    if (!isDigestLike(ref)) throw new PollenError('ERR_INVALID_REFERENCE', `invalid manifest reference ${JSON.stringify(ref.slice(0, 100))}`);
    return { kind: 'digest', digest: parseDigest(ref) };
  }
  if (!isValidTag(ref)) throw new PollenError('ERR_INVALID_REFERENCE', `invalid tag ${JSON.stringify(ref.slice(0, 100))}`);
  return { kind: 'tag', tag: ref };
}

/** A full image reference: `[host[:port]/]name[:tag][@digest]`, docker.io normalisation included. */
export interface ImageReference {
  /** Registry host as written (`docker.io` for none). */
  readonly host: string;
  readonly name: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;
}

export function parseImageReference(s: string): ImageReference {
  let rest = s.trim();
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new PollenError('ERR_INVALID_REFERENCE', `invalid tag in ${JSON.stringify(s)}`);
  }
  let host = 'docker.io';
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      host = first;
      rest = rest.slice(slash + 1);
    }
  }
  if (host === 'docker.io' && !rest.includes('/')) rest = `library/${rest}`;
  if (!isValidName(rest)) throw new PollenError('ERR_INVALID_REFERENCE', `invalid repository name in ${JSON.stringify(s)}`);
  if (!tag && !digest) tag = 'latest';
  return { host, name: rest, tag, digest };
}

export function formatImageReference(r: ImageReference): string {
  return `${r.host}/${r.name}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}
