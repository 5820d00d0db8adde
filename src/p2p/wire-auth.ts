// The cluster secret proof carried in the BEP 10 extended handshake: each side sends a fresh nonce,
// then proves it knows the secret with HMAC-SHA256 over both nonces (its own first) and the info
// hash. A proof cannot be replayed (fresh nonces) or reflected (the order of the nonces differs).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const NONCE_BYTES = 16;
const LABEL = 'pollen-wire-v1';

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function wireProof(secret: string, infoHash: string, senderNonce: Uint8Array, receiverNonce: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(LABEL).update(infoHash).update(senderNonce).update(receiverNonce).digest();
}

export function checkWireProof(secret: string, infoHash: string, senderNonce: Uint8Array, receiverNonce: Uint8Array, proof: Uint8Array): boolean {
  const expected = wireProof(secret, infoHash, senderNonce, receiverNonce);
  return proof.length === expected.length && timingSafeEqual(expected, proof);
}

/** The token peers present to the supernode's HTTP API (the API is on a trusted network path). */
export function clusterToken(secret: string): string {
  return createHmac('sha256', secret).update('pollen-cluster-v1').digest('hex');
}
