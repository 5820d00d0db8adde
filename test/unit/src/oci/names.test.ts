import { describe, expect, it } from 'vitest';
import { isPollenError } from '../../../../src/errors.ts';
import { isValidName, parseImageReference, parseManifestRef } from '../../../../src/oci/names.ts';

describe('repository names', () => {
  it.each(['a', 'library/busybox', 'a/b/c', 'my-org/my_app.v2', 'a__b', 'x--y'])('accepts %s', (n) => expect(isValidName(n)).toBe(true));
  it.each(['', 'A', 'a/', '/a', 'a//b', 'a/../b', '..', 'a b', '-a', 'a-', 'a.', `${'a'.repeat(256)}`])('refuses %j', (n) => expect(isValidName(n)).toBe(false));
});

describe('manifest references', () => {
  it('tells tags from digests', () => {
    expect(parseManifestRef('v1.0')).toEqual({ kind: 'tag', tag: 'v1.0' });
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseManifestRef(d)).toEqual({ kind: 'digest', digest: d });
  });
  it('refuses bad tags and digests with ERR_INVALID_*', () => {
    expect(() => parseManifestRef('-x')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_REFERENCE' }));
    expect(() => parseManifestRef('sha256:zz')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_DIGEST' }));
    try {
      parseManifestRef('a'.repeat(129));
      expect.unreachable();
    } catch (e) {
      expect(isPollenError(e, 'ERR_INVALID_REFERENCE')).toBe(true);
    }
  });
});

describe('image references', () => {
  it('normalises Docker Hub names', () => {
    expect(parseImageReference('busybox')).toEqual({ host: 'docker.io', name: 'library/busybox', tag: 'latest', digest: undefined });
    expect(parseImageReference('org/app:1')).toEqual({ host: 'docker.io', name: 'org/app', tag: '1', digest: undefined });
  });
  it('keeps hosts with ports, tags and digests', () => {
    const d = `sha256:${'b'.repeat(64)}`;
    expect(parseImageReference(`127.0.0.1:5000/ns/img:v2@${d}`)).toEqual({ host: '127.0.0.1:5000', name: 'ns/img', tag: 'v2', digest: d });
    expect(parseImageReference('localhost/img')).toEqual({ host: 'localhost', name: 'img', tag: 'latest', digest: undefined });
  });
  it('refuses garbage', () => {
    expect(() => parseImageReference('UPPER/case')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_REFERENCE' }));
  });
});
