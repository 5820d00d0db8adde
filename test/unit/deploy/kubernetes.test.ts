// deploy/kubernetes: built offline by the real kustomize in kubectl (`kubectl kustomize`, no API
// server needed), each object validated against the Kubernetes API schema (kubernetes-models), and
// the references between them checked: selectors, Services, volumes, the Secret, the ConfigMap's
// config files (against the daemons' tables), the peers' supernode list against the StatefulSet,
// and the init container's `pollen configure` arguments against the peer's registries.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonSet, StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1';
import type { IContainer, IPodSpec } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfigFile } from '../../../src/config-file.ts';
import { resolveConfig } from '../../../src/config.ts';
import { PEER_SETTINGS, peerConfigFrom } from '../../../peer/config.ts';
import { SUPERNODE_SETTINGS } from '../../../supernode/config.ts';
import { POLLEN_BIN } from '../../helpers/pollen.ts';
import { execFileP, requireTool } from '../../helpers/tools.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
const DIR = join(ROOT, 'deploy/kubernetes');

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown };
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/StatefulSet': StatefulSet,
};

function docs(text: string, file: string): Obj[] {
  return parseAllDocuments(text).map((d) => {
    expect(d.errors, file).toEqual([]);
    return d.toJS() as Obj;
  }).filter((o) => o !== null);
}

describe('deploy/kubernetes', () => {
  let objects: Obj[];
  const find = <T>(kind: string, name: string): T => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    expect(o, `${kind}/${name}`).toBeDefined();
    return o as unknown as T;
  };

  beforeAll(async () => {
    const kubectl = requireTool('kubectl', 'kubernetes-client');
    // No cluster and no kubeconfig: kustomize builds locally.
    const home = await mkdtemp(join(tmpdir(), 'pollen-kubectl-'));
    try {
      const { stdout } = await execFileP(kubectl, ['kustomize', DIR], { env: { ...process.env, HOME: home, KUBECONFIG: join(home, 'none') }, maxBuffer: 8 << 20 });
      objects = docs(stdout, 'kubectl kustomize');
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('builds every file the kustomization lists, and lists every manifest in the folder', async () => {
    const kustomization = docs(await readFile(join(DIR, 'kustomization.yaml'), 'utf8'), 'kustomization.yaml')[0] as unknown as { resources: string[] };
    const files = (await readdir(DIR)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    let count = 0;
    for (const f of files) count += docs(await readFile(join(DIR, f), 'utf8'), f).length;
    expect(objects).toHaveLength(count);
  });

  it('validates every object against the Kubernetes API schema', () => {
    for (const o of objects) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `${o.apiVersion} ${o.kind} has a schema here`).toBeDefined();
      expect(() => new Model!(o as never).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
  });

  it('would catch a malformed object (the schema check can fail)', () => {
    const ds = structuredClone(find<Obj>('DaemonSet', 'pollen-peer')) as Obj & { spec: { selector?: unknown } };
    delete ds.spec.selector;
    expect(() => new DaemonSet(ds as never).validate()).toThrow(/selector/);
  });

  it('puts everything in the pollen namespace, selects its own pods, and mounts only volumes it has', () => {
    for (const o of objects) if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('pollen');
    for (const kind of ['DaemonSet', 'StatefulSet']) {
      for (const w of objects.filter((o) => o.kind === kind) as unknown as Array<{ metadata: { name: string }; spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: IPodSpec }; volumeClaimTemplates?: Array<{ metadata: { name: string } }> } }>) {
        expect(w.spec.template.metadata.labels).toMatchObject(w.spec.selector.matchLabels);
        const volumes = new Set([...(w.spec.template.spec.volumes ?? []).map((v) => v.name), ...(w.spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name)]);
        for (const c of [...(w.spec.template.spec.initContainers ?? []), ...w.spec.template.spec.containers]) {
          for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${w.metadata.name}/${c.name} mounts ${m.name}`).toBe(true);
          for (const e of c.env ?? []) {
            if (e.valueFrom?.secretKeyRef) expect(e.valueFrom.secretKeyRef.name).toBe('pollen-cluster');
            if (e.valueFrom?.configMapKeyRef) expect.fail('config comes from the mounted files');
          }
        }
        for (const v of w.spec.template.spec.volumes ?? []) if (v.configMap) find('ConfigMap', v.configMap.name!);
      }
    }
  });

  it('gives the supernodes a headless Service for stable names and a Service for the jobs API', () => {
    const sts = find<{ spec: { serviceName: string; template: { metadata: { labels: Record<string, string> }; spec: IPodSpec } } }>('StatefulSet', 'pollen-supernode');
    const headless = find<{ spec: { clusterIP: string; selector: Record<string, string> } }>('Service', sts.spec.serviceName);
    expect(headless.spec.clusterIP).toBe('None');
    for (const svc of objects.filter((o) => o.kind === 'Service') as unknown as Array<{ spec: { selector: Record<string, string>; ports: Array<{ targetPort: string }> } }>) {
      expect(sts.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
      const ports = sts.spec.template.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      for (const p of svc.spec.ports) expect(ports).toContain(p.targetPort);
    }
    const secretEnv = sts.spec.template.spec.containers[0]!.env!.find((e) => e.name === 'POLLEN_SECRET');
    expect(secretEnv?.valueFrom?.secretKeyRef).toMatchObject({ name: 'pollen-cluster', key: 'secret' });
  });

  it("holds config files the daemons accept, with the peers' supernode list matching the StatefulSet", () => {
    const cm = find<{ data: Record<string, string> }>('ConfigMap', 'pollen-config');
    const sts = find<{ metadata: { name: string; namespace: string }; spec: { replicas: number; serviceName: string; template: { spec: IPodSpec } } }>('StatefulSet', 'pollen-supernode');
    const supernode = resolveConfig(SUPERNODE_SETTINGS, {}, {}, parseConfigFile(cm.data['supernode.yaml']!, 'supernode.yaml', SUPERNODE_SETTINGS));
    const port = Number(String(supernode.listen).split(':')[1]);
    expect(sts.spec.template.spec.containers[0]!.ports![0]!.containerPort).toBe(port);
    const peer = peerConfigFrom(resolveConfig(PEER_SETTINGS, {}, { POLLEN_WIRE_ADVERTISE: '10.0.0.7:65002' }, parseConfigFile(cm.data['peer.yaml']!, 'peer.yaml', PEER_SETTINGS)));
    const expected = Array.from({ length: sts.spec.replicas }, (_, i) => `http://${sts.metadata.name}-${i}.${sts.spec.serviceName}.${sts.metadata.namespace}.svc.cluster.local:${port}`);
    expect(peer.supernodes).toEqual(expected);
    expect(peer.listen.startsWith('127.0.0.1:')).toBe(true);
  });

  it('runs the peer on the host network, its init container pointing containerd at it for every registry', async () => {
    const ds = find<{ spec: { template: { spec: IPodSpec } } }>('DaemonSet', 'pollen-peer');
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    const cm = find<{ data: Record<string, string> }>('ConfigMap', 'pollen-config');
    const peer = peerConfigFrom(resolveConfig(PEER_SETTINGS, {}, {}, parseConfigFile(cm.data['peer.yaml']!, 'peer.yaml', PEER_SETTINGS)));
    const init = pod.initContainers![0]! as IContainer & { args: string[] };
    const arg = (flag: string) => init.args.flatMap((a, i) => (a === flag ? [init.args[i + 1]!] : []));
    expect(init.args.slice(0, 2)).toEqual(['configure', 'containerd']);
    expect(arg('--mirror')).toEqual([`http://${peer.listen}`]);
    expect(arg('--registry').sort()).toEqual([...peer.registries.keys()].sort());
    const certsMount = init.volumeMounts!.find((m) => m.mountPath === arg('--config-dir')[0]);
    expect(pod.volumes!.find((v) => v.name === certsMount?.name)?.hostPath?.path).toBe('/etc/containerd/certs.d');
    const dataMount = pod.containers[0]!.volumeMounts!.find((m) => peer.data.startsWith(`${m.mountPath}/`));
    expect(pod.volumes!.find((v) => v.name === dataMount?.name)?.hostPath?.path).toBe('/var/lib/pollen');
    // The init container's arguments are accepted by the real command (into a scratch directory).
    const scratch = await mkdtemp(join(tmpdir(), 'pollen-k8s-init-'));
    try {
      const args = init.args.map((a, i) => (init.args[i - 1] === '--config-dir' ? scratch : a));
      await execFileP(process.execPath, [POLLEN_BIN, ...args], { timeout: 60_000 });
      expect(await readFile(join(scratch, [...peer.registries.keys()][0]!, 'hosts.toml'), 'utf8')).toContain(`[host."http://${peer.listen}"]`);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

});
