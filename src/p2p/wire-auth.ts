// The token peers present to the supernode's HTTP API. (Membership on the peer wire is TLS with the
// cluster's pre-shared key: src/p2p/wire-tls.ts.)
import { createHmac } from 'node:crypto';

/** The token peers present to the supernode's HTTP API (the API is on a trusted network path). */
export function clusterToken(secret: string): string {
  return createHmac('sha256', secret).update('pollen-cluster-v1').digest('hex');
}
