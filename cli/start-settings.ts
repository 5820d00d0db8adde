// `pollen start` runs a peer and a supernode in one process. Its flags, environment and config file
// are one flat table: the peer's settings plus these, which configure the embedded supernode (the
// shared ones, secret and log-level, come from the peer's table). Printed into the README by
// `pollen docs`.
import { validateHostPort, type Setting } from '../src/config.ts';
import { PEER_SETTINGS } from '../peer/config.ts';
import { SUPERNODE_SETTINGS } from '../supernode/config.ts';

const FROM_SUPERNODE = new Set(['adminToken', 'maxParents']);

export const START_EXTRA_SETTINGS: readonly Setting[] = [
  { key: 'supernodeListen', type: 'string', flag: 'supernode-listen', env: 'POLLEN_SUPERNODE_LISTEN', default: '127.0.0.1:8002', help: 'address of the embedded supernode HTTP API', validate: validateHostPort },
  ...SUPERNODE_SETTINGS.filter((s) => FROM_SUPERNODE.has(s.key)),
];

/** Every key `pollen start` takes (flags, env, config file). */
export const START_SETTINGS: readonly Setting[] = [...PEER_SETTINGS, ...START_EXTRA_SETTINGS];

/** The embedded supernode's settings other than its address and data directory (set by `start`). */
export const START_SUPERNODE_SETTINGS: readonly Setting[] = SUPERNODE_SETTINGS.filter((s) => s.key !== 'listen' && s.key !== 'data');
