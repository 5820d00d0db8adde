import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { parseMirror } from '../../../../src/engine-config/mirror.ts';
import { registriesConf } from '../../../../src/engine-config/podman.ts';

const MIRROR = parseMirror('http://127.0.0.1:65001');
const P = '/etc/containers/registries.conf';
const DEBIAN_STYLE = '# For more information on this configuration file, see containers-registries.conf(5).\n#\nunqualified-search-registries = ["docker.io"]\n\n[[registry]]\nprefix = "quay.io"\nlocation = "quay.io"\n\n[aliases]\n  "fedora" = "registry.fedoraproject.org/fedora"\n';

describe("containers' registries.conf", () => {
  it('appends an entry for a new registry, leaving the rest of the file (comments included) as it was', () => {
    const out = registriesConf(DEBIAN_STYLE, P, ['r.example:5000'], MIRROR);
    expect(out.startsWith(DEBIAN_STYLE)).toBe(true);
    const doc = parse(out) as { registry: unknown[]; aliases: unknown; 'unqualified-search-registries': unknown };
    expect(doc.registry).toEqual([
      { prefix: 'quay.io', location: 'quay.io' },
      { prefix: 'r.example:5000', location: 'r.example:5000', mirror: [{ location: '127.0.0.1:65001', insecure: true }] },
    ]);
    expect(doc.aliases).toEqual({ fedora: 'registry.fedoraproject.org/fedora' });
  });

  it('puts the peer first among the mirrors of an existing entry, keeping the others', () => {
    const existing = '[[registry]]\nprefix = "r.example:5000"\nlocation = "r.example:5000"\nblocked = false\n[[registry.mirror]]\nlocation = "other.example"\n';
    const doc = parse(registriesConf(existing, P, ['r.example:5000'], parseMirror('https://peer.example:65001'))) as { registry: Array<Record<string, unknown>> };
    expect(doc.registry).toEqual([{ prefix: 'r.example:5000', location: 'r.example:5000', blocked: false, mirror: [{ location: 'peer.example:65001', insecure: false }, { location: 'other.example' }] }]);
  });

  it('leaves the file unchanged when the peer is already a mirror of the registry', () => {
    const once = registriesConf(DEBIAN_STYLE, P, ['r.example:5000'], MIRROR);
    expect(registriesConf(once, P, ['r.example:5000'], MIRROR)).toBe(once);
  });

  it('extends a file that holds its entries as an inline array', () => {
    const doc = parse(registriesConf('registry = [{ prefix = "quay.io", location = "quay.io" }]\n', P, ['r.example'], MIRROR)) as { registry: Array<Record<string, unknown>> };
    expect(doc.registry.map((r) => r.prefix)).toEqual(['quay.io', 'r.example']);
  });

  it('refuses the v1 format and malformed entries, naming the file', () => {
    expect(() => registriesConf('[registries.search]\nregistries = ["docker.io"]\n', P, ['r.example'], MIRROR)).toThrow(`${P}: this is the v1 format`);
    expect(() => registriesConf('registry = "x"\n', P, ['r.example'], MIRROR)).toThrow(/registry must be an array of tables/);
    expect(() => registriesConf('[[registry]\n', P, ['r.example'], MIRROR)).toThrow(new RegExp(`^${P}:1: not valid TOML`));
  });
});
