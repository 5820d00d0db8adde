import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkDockerRegistries, dockerDaemonJson } from '../../../../src/engine-config/docker.ts';
import { parseMirror } from '../../../../src/engine-config/mirror.ts';

const MIRROR = parseMirror('http://127.0.0.1:65001');
const P = '/etc/docker/daemon.json';

describe("docker's daemon.json", () => {
  it('creates a file with the peer as the only mirror', () => {
    expect(JSON.parse(dockerDaemonJson(undefined, P, MIRROR))).toEqual({ 'registry-mirrors': ['http://127.0.0.1:65001'] });
    expect(JSON.parse(dockerDaemonJson('  \n', P, MIRROR))).toEqual({ 'registry-mirrors': ['http://127.0.0.1:65001'] });
  });

  it('property: every other key survives, in its place, and the peer becomes the first mirror exactly once', () => {
    const otherKey = fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== 'registry-mirrors' && k !== '__proto__');
    fc.assert(
      fc.property(fc.dictionary(otherKey, fc.jsonValue(), { maxKeys: 6 }), fc.option(fc.uniqueArray(fc.constantFrom('https://a.example', 'http://127.0.0.1:65001/', 'http://127.0.0.1:65001', 'https://b.example:5000'), { maxLength: 4, selector: (m) => m.replace(/\/$/, '') })), (generated, mirrors) => {
        // What a daemon.json can hold: JSON has no -0, so the file's own values are the round trip's.
        const others = JSON.parse(JSON.stringify(generated)) as Record<string, unknown>;
        const before = mirrors === null ? others : { ...others, 'registry-mirrors': mirrors };
        const after = JSON.parse(dockerDaemonJson(JSON.stringify(before), P, MIRROR)) as Record<string, unknown>;
        for (const [k, v] of Object.entries(others)) expect(after[k]).toEqual(v);
        expect(Object.keys(after).filter((k) => k !== 'registry-mirrors')).toEqual(Object.keys(others));
        const list = after['registry-mirrors'] as string[];
        expect(list[0]?.replace(/\/$/, '')).toBe('http://127.0.0.1:65001');
        expect(list.filter((m) => m.startsWith('http://127.0.0.1:65001'))).toHaveLength(1);
        expect(list.slice(1)).toEqual((mirrors ?? []).filter((m) => !m.startsWith('http://127.0.0.1:65001')));
        const again = dockerDaemonJson(JSON.stringify(after, null, 2), P, MIRROR);
        expect(JSON.parse(again)).toEqual(after);
      }),
      { numRuns: 150 },
    );
  });

  it('leaves a file whose first mirror is already the peer untouched', () => {
    const text = '{"registry-mirrors": ["http://127.0.0.1:65001/"], "debug": true}';
    expect(dockerDaemonJson(text, P, MIRROR)).toBe(text);
  });

  it('names the file it cannot merge into', () => {
    expect(() => dockerDaemonJson('{"a": 1,}', P, MIRROR)).toThrow(new RegExp(`^${P}: not valid JSON`));
    expect(() => dockerDaemonJson('[1]', P, MIRROR)).toThrow(`${P}: expected a JSON object`);
    expect(() => dockerDaemonJson('{"registry-mirrors": "http://x"}', P, MIRROR)).toThrow(/registry-mirrors must be a list of URLs/);
  });

  it('refuses a registry other than Docker Hub, which dockerd never sends to a mirror', () => {
    expect(() => checkDockerRegistries(['docker.io', 'index.docker.io'])).not.toThrow();
    expect(() => checkDockerRegistries(['quay.io'])).toThrow(/only Docker Hub .* not quay\.io/);
  });
});
