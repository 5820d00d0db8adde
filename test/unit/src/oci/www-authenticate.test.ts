import { describe, expect, it } from 'vitest';
import { parseChallenge } from '../../../../src/oci/www-authenticate.ts';

describe('WWW-Authenticate', () => {
  it('parses a Bearer challenge with quoted parameters', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
    });
  });
  it('parses Basic, token68-free and escaped values', () => {
    expect(parseChallenge('Basic realm="my \\"realm\\""')).toEqual({ scheme: 'basic', params: { realm: 'my "realm"' } });
    expect(parseChallenge('Bearer realm=plain, error=invalid_token')).toEqual({ scheme: 'bearer', params: { realm: 'plain', error: 'invalid_token' } });
  });
  it('returns undefined for nothing', () => {
    expect(parseChallenge(undefined)).toBeUndefined();
    expect(parseChallenge('')).toBeUndefined();
  });
});
