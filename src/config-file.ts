// Config files: a YAML mapping of setting to value, read once at start. This is the one module that
// imports `yaml`. Keys are a setting's key (`uploadSlots`) or its flag without dashes
// (`upload-slots`); values are checked against the setting's type here, where the YAML types are
// still known, so `upload-slots: ten` is refused with the file, line and key. Unknown keys are
// refused with the closest known one. Precedence over flags and env is resolveConfig's.
import { readFileSync } from 'node:fs';
import { isMap, isScalar, LineCounter, parseDocument, type Node } from 'yaml';
import type { FileValue, FileValues, Setting } from './config.ts';
import { PollenError } from './errors.ts';

/** Markdown for the README (printed by `pollen docs`): how a config file is written. */
export const CONFIG_FILE_DOC = `### Configuration files

\`pollen peer\`, \`pollen supernode\` and \`pollen start\` read a YAML file given with \`--config FILE\`
(or \`$POLLEN_CONFIG\`). It is one flat mapping of setting to value; a key is the flag without its
dashes (\`upload-slots\`) or the setting's camel-case key (\`uploadSlots\`). Flags win over the
environment, which wins over the file, which wins over the default. Integers and booleans are YAML
numbers and \`true\`/\`false\`; a rate is bytes per second, a number or a size (\`50MiB\`); a list
is a YAML sequence (a single string is a one-item list), and the \`HOST=VALUE\` lists (\`registry\`,
\`credentials\`) may also be a mapping. An empty value leaves the
default. An unknown key, a key given twice or a value of the wrong type stops the daemon with the
file, the line and the key. \`pollen start\` takes the peer's keys plus those of its own table.
Keep secrets out of world-readable files: \`POLLEN_SECRET\` from a root-only environment file or a
Kubernetes Secret. Commented examples: \`deploy/peer.yaml\`, \`deploy/supernode.yaml\`.

\`\`\`yaml
listen: 127.0.0.1:65001
data: /var/lib/pollen/peer
registry:
  registry.example:5000: https://registry.example:5000
supernode:
  - http://supernode-0.example:8002
upload-slots: 16
\`\`\``;

type Value = FileValue['value'];

/** Reads and checks a config file against a daemon's table. */
export function loadConfigFile(path: string, table: readonly Setting[]): FileValues {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PollenError('ERR_INVALID_CONFIG', `cannot read config file ${path}: ${(err as Error).message}`, { path });
  }
  return parseConfigFile(text, path, table);
}

/** Parses config file text (YAML) and checks every key and value against the table. */
export function parseConfigFile(text: string, path: string, table: readonly Setting[]): FileValues {
  const fail = (where: string, why: string): never => {
    throw new PollenError('ERR_INVALID_CONFIG', `${where}: ${why}`, { path });
  };
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, version: '1.2' });
  const yamlError = doc.errors[0];
  if (yamlError) fail(path, `not valid YAML: ${yamlError.message.split('\n')[0]}`);
  const out = new Map<string, FileValue & { readonly name: string }>();
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return out;
  if (!isMap(doc.contents)) return fail(path, 'expected a mapping of setting: value at the top level');
  const byName = new Map<string, Setting>();
  for (const s of table) byName.set(s.key, s).set(s.flag, s);
  for (const pair of doc.contents.items) {
    const keyNode = pair.key as Node | null;
    const line = keyNode?.range ? lines.linePos(keyNode.range[0]).line : 0;
    const at = `${path}:${line}`;
    if (!isScalar(keyNode) || typeof keyNode.value !== 'string') return fail(at, 'a key must be a setting name');
    const name = keyNode.value;
    const raw: unknown = pair.value === null ? null : (pair.value as Node).toJS(doc, { maxAliasCount: 100 });
    const setting = byName.get(name);
    if (!setting) return fail(at, unknownKey(name, raw, table));
    const previous = out.get(setting.key);
    if (previous) return fail(at, `${name} sets ${setting.flag} again (already set at ${previous.source} as ${previous.name})`);
    if (raw === null || raw === undefined) continue; // `key:` with no value leaves the default
    const source = `${at} ${name}`;
    const why = typeMismatch(setting, raw);
    if (why) throw new PollenError('ERR_INVALID_CONFIG', `invalid ${setting.key} (${source}): ${why}`, { key: setting.key, source, path });
    out.set(setting.key, { value: asValue(setting, raw), source, name });
  }
  return out;
}

function describe(raw: unknown): string {
  if (Array.isArray(raw)) return 'a list';
  if (raw !== null && typeof raw === 'object') return 'a mapping';
  return `${typeof raw === 'string' ? 'the string' : typeof raw === 'number' ? 'the number' : 'the value'} ${JSON.stringify(raw)}`;
}

function typeMismatch(setting: Setting, raw: unknown): string | undefined {
  switch (setting.type) {
    case 'string':
      return typeof raw === 'string' ? undefined : `expected a string, got ${describe(raw)}${typeof raw === 'number' || typeof raw === 'boolean' ? ' (quote it)' : ''}`;
    case 'int':
      return typeof raw === 'number' && Number.isSafeInteger(raw) ? undefined : `expected an integer, got ${describe(raw)}`;
    case 'rate':
      return (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) || typeof raw === 'string' ? undefined : `expected bytes per second (a number, or a size such as 50MiB), got ${describe(raw)}`;
    case 'bool':
      return typeof raw === 'boolean' ? undefined : `expected true or false, got ${describe(raw)}`;
    case 'list': {
      if (typeof raw === 'string') return undefined;
      const items = Array.isArray(raw) ? raw : raw !== null && typeof raw === 'object' ? Object.values(raw) : undefined;
      if (!items) return `expected a list of strings, got ${describe(raw)}`;
      const i = items.findIndex((x) => typeof x !== 'string');
      return i < 0 ? undefined : `expected a list of strings; item ${i + 1} is ${describe(items[i])}`;
    }
  }
}

function asValue(setting: Setting, raw: unknown): Value {
  if (setting.type !== 'list') return raw as Value;
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw)) return raw as string[];
  // A mapping is the HOST=VALUE form of the list.
  return Object.entries(raw as Record<string, string>).map(([k, v]) => `${k}=${v}`);
}

function unknownKey(name: string, raw: unknown, table: readonly Setting[]): string {
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');
  const asEnv = table.find((s) => s.env.toLowerCase() === name.toLowerCase() || norm(s.flag) === norm(name) || norm(s.key) === norm(name));
  let best: Setting | undefined = asEnv;
  if (!best) {
    let bestDistance = Infinity;
    for (const s of table) {
      const d = Math.min(editDistance(name, s.flag), editDistance(name, s.key));
      if (d < bestDistance) [best, bestDistance] = [s, d];
    }
    if (bestDistance > Math.max(2, Math.floor(name.length / 3))) best = undefined;
  }
  const hint = best ? ` (did you mean ${best.flag}?)` : raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? ' (settings are top-level keys, not sections)' : '';
  return `unknown setting ${JSON.stringify(name)}${hint}`;
}

/** Levenshtein distance, for suggesting the key that was meant. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
