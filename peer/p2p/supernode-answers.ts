// What a peer reads out of the supernode's answers beyond their JSON shape: packed piece hashes
// (packHashes) as the list the transfer reads, a seed piece's hash and proof (head or trailer), the
// piece key of a registration answer, a refused connection told apart from a slow one, and the
// wait a refusal for the peer's allowance asks.
import type { Dispatcher } from 'undici';
import { isSha256Hex } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { MAX_PIECES, unpackHashes } from '../../src/p2p/metainfo.ts';
import { ProofVerifier, signatureOf } from '../../src/p2p/piece-proof.ts';
import { MAX_SYNC_PACE_MS, PIECE_HASH_HEADER, PIECE_HASH_LIST_HEADER, PIECE_SIGNATURE_HEADER, type SyncResponse, type TaskAnswer } from '../../src/p2p/supernode-api.ts';
import { readTaskAnswer } from '../../src/p2p/sync-answer.ts';

/** The answer with packed hashes (packHashes) as the list the transfer reads, or undefined if they are malformed. */
export function withUnpackedHashes(answer: SyncResponse): SyncResponse | undefined {
  if (answer.hashesPacked === undefined) return answer;
  const hashes = unpackHashes(answer.hashesPacked, MAX_PIECES);
  if (!hashes) return undefined;
  const { hashesPacked: _, ...rest } = answer;
  return { ...rest, hashes };
}

/**
 * The wait a call refused for the peer's allowance asks (429's retryAfter, seconds: apiErrorFrom
 * keeps it), within [0, MAX_SYNC_PACE_MS] like a paced answer's; 0 for any other error.
 */
export function refusedMs(err: PollenError): number {
  const s = err.detail.retryAfter;
  return err.code === 'ERR_TOO_MANY_REQUESTS' && typeof s === 'number' && s > 0 ? Math.min(s * 1000, MAX_SYNC_PACE_MS) : 0;
}

/** A seed piece as the supernode answers it. */
export interface SeedPieceAnswer {
  readonly body: AsyncIterable<Buffer>;
  /**
   * The piece's sha256 (hex) as the supernode sent it (PIECE_HASH_HEADER): from the head, or from
   * the trailer once the body has ended; undefined when it sent none (an older supernode) or
   * something that is not one.
   */
  pieceHash(): string | undefined;
  /** The supernode's signature of that hash (PIECE_SIGNATURE_HEADER), when it sent one that is one. */
  pieceSignature?(): Buffer | undefined;
  /** The blob's vouched list of piece hashes (PIECE_HASH_LIST_HEADER), when it came and is a sha256. */
  hashList?(): string | undefined;
}

/**
 * True when `err` says the supernode's host refused the connection: nothing listens there (the
 * supernode is down or restarting), unlike a timeout, which a slow supernode gives too.
 */
export function connectionRefused(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++, e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
  }
  return false;
}

function pieceHashOf(value: string | undefined): string | undefined {
  return isSha256Hex(value) ? value : undefined;
}

/** What a seed piece's answer says beside its bytes (headers or trailers; over a seed channel, fields of its head or end frame). */
export type SeedPieceHeader = typeof PIECE_HASH_HEADER | typeof PIECE_SIGNATURE_HEADER | typeof PIECE_HASH_LIST_HEADER;

/** A seed piece's answer: its body, and its hash and signature from `header` (head, else trailer; over a seed channel, its head or end frame). */
export function seedPieceAnswer(body: AsyncIterable<Buffer>, header: (name: SeedPieceHeader) => string | string[] | undefined): SeedPieceAnswer {
  const text = (name: SeedPieceHeader): string | undefined => {
    const v = header(name);
    return typeof v === 'string' ? v : undefined;
  };
  return { body, pieceHash: () => pieceHashOf(text(PIECE_HASH_HEADER)), pieceSignature: () => signatureOf(text(PIECE_SIGNATURE_HEADER)), hashList: () => pieceHashOf(text(PIECE_HASH_LIST_HEADER)) };
}

/** A task's creation answered by `url` (its list of hashes put back), or ERR_SUPERNODE_UNAVAILABLE when malformed. */
export function taskAnswerOf(url: string, json: unknown): TaskAnswer {
  const answer = json && typeof json === 'object' ? readTaskAnswer(json) : undefined;
  if (!answer) throw new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${url} sent a malformed task answer`, { supernode: url });
  return answer;
}

export function notRegistered(url: string): PollenError {
  return new PollenError('ERR_NOT_FOUND', `this peer is not registered with supernode ${url}`, { supernode: url });
}

/** The strings of a registration answer's list of names (syncFields, channelCalls); none when it is not a list. */
export function namesOf(list: unknown): string[] {
  return Array.isArray(list) ? list.filter((f): f is string => typeof f === 'string') : [];
}

/** The checker of a registration answer's piece key; a key that is not one is as none (the peer then takes hashes from the supernode only). */
export function verifierOf(pieceKey: unknown): ProofVerifier | undefined {
  if (typeof pieceKey !== 'string') return undefined;
  try {
    return new ProofVerifier(pieceKey);
  } catch {
    return undefined;
  }
}

const MAX_RESPONSE_BYTES = 1 << 20;

/** An answer's body as text, at most MAX_RESPONSE_BYTES (ERR_MESSAGE_TOO_LARGE past that, the body dropped). */
export async function readCapped(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > MAX_RESPONSE_BYTES) {
      body.destroy();
      throw new PollenError('ERR_MESSAGE_TOO_LARGE', `supernode response exceeds ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
