import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { containerdHostsToml } from '../../../../src/engine-config/containerd.ts';
import { parseMirror } from '../../../../src/engine-config/mirror.ts';

const MIRROR = parseMirror('http://127.0.0.1:65001/');
const P = '/etc/containerd/certs.d/r.example:5000/hosts.toml';

describe("containerd's hosts.toml", () => {
  it('puts the peer first with pull and resolve, and the registry as the fallback server', () => {
    const doc = parse(containerdHostsToml(undefined, P, 'r.example:5000', MIRROR));
    expect(doc).toEqual({ server: 'https://r.example:5000', host: { 'http://127.0.0.1:65001': { capabilities: ['pull', 'resolve'] } } });
  });

  it("keeps the file's server, other keys and other hosts, after the peer", () => {
    const existing = '# ours\nserver = "http://r.example:5000"\nca = "/etc/ca.pem"\n\n[host."https://other.example"]\n  capabilities = ["pull"]\n  skip_verify = true\n';
    const doc = parse(containerdHostsToml(existing, P, 'r.example:5000', MIRROR));
    expect(doc.server).toBe('http://r.example:5000');
    expect(doc.ca).toBe('/etc/ca.pem');
    expect(Object.keys(doc.host as object)).toEqual(['http://127.0.0.1:65001', 'https://other.example']);
    expect((doc.host as Record<string, unknown>)['https://other.example']).toEqual({ capabilities: ['pull'], skip_verify: true });
  });

  it('moves the peer to the front when it was listed after another host, and keeps its other keys', () => {
    const existing = '[host."https://other.example"]\ncapabilities = ["pull"]\n[host."http://127.0.0.1:65001"]\ncapabilities = ["pull"]\nskip_verify = true\n';
    const hosts = parse(containerdHostsToml(existing, P, 'r.example:5000', MIRROR)).host as Record<string, unknown>;
    expect(Object.keys(hosts)).toEqual(['http://127.0.0.1:65001', 'https://other.example']);
    expect(hosts['http://127.0.0.1:65001']).toEqual({ capabilities: ['pull', 'resolve'], skip_verify: true });
  });

  it('leaves a file that already has the peer first exactly as it was (comments included)', () => {
    const once = containerdHostsToml(undefined, P, 'r.example:5000', MIRROR);
    expect(containerdHostsToml(once, P, 'r.example:5000', MIRROR)).toBe(once);
  });

  it('names the file and line of a file it cannot parse', () => {
    expect(() => containerdHostsToml('server = "x"\nhost = [', P, 'r.example:5000', MIRROR)).toThrow(new RegExp(`^${P}:2: not valid TOML`));
    expect(() => containerdHostsToml('host = "x"\n', P, 'r.example:5000', MIRROR)).toThrow(/host must be a table/);
  });
});
