// Pollen's BEP 10 extensions on the peer wire, named in both sides' extended handshake: the
// listener's `pollen_accept` (it serves the digest the dialler named), the parent's `pollen_proof`
// (a piece proof ahead of the piece's first block), `pollen_reject` (a request it will not answer)
// and `pollen_hashes` (every piece's hash at once, to a dialler that asked). WireConnection
// registers them and reads them; the proof, reject and hash-list messages are framed here, beside
// the block messages of wire-blocks.ts.
import { digestHex, parseDigest, type Digest } from '../digest.ts';
import { MAX_PIECES } from './metainfo.ts';
import { encodeProof, type PieceProof } from './piece-proof.ts';

/** The listener's answer to the digest the dialler named: it serves it (payload: see acceptance). */
export const ACCEPT_EXT = 'pollen_accept';

/**
 * The `pollen_accept` payload: the digest, and the piece size when the dialler named one, so that a
 * dialler knows its layout is served (a parent from before layouts echoes the digest alone and
 * serves the default one: refused, not banned).
 */
export function acceptance(digest: string, pieceSize: number | undefined): string {
  return pieceSize === undefined ? digest : `${digest} ${pieceSize}`;
}
/** A blob's BEP 3 info hash: the first 20 bytes of its sha256. */
export function infoHashOf(digest: Digest): string {
  return digestHex(digest).slice(0, 40);
}

/**
 * What the dialler's extended handshake asks the listener for: the digest (`pollen_digest`:
 * `sha256:` and 64 lowercase hex digits, the one its BEP 3 handshake's `infoHash` is of) and the
 * piece size (`pollen_pieces`, if named); or the protocol violation it is.
 */
export function diallerAsks(handshake: Record<string, unknown>, infoHash: string | undefined): { digest: Digest; pieceSize: number | undefined } | string {
  const raw = handshake.pollen_digest;
  let digest: Digest | undefined;
  try {
    if (raw instanceof Uint8Array && raw.length <= 200) digest = parseDigest(Buffer.from(raw).toString('latin1'));
  } catch {}
  if (!digest) return 'bad digest';
  if (infoHashOf(digest) !== infoHash) return 'digest does not match info hash';
  const pieces = handshake.pollen_pieces;
  if (pieces !== undefined && !(Number.isSafeInteger(pieces) && (pieces as number) > 0)) return 'bad piece size';
  return { digest, pieceSize: pieces as number | undefined };
}

/**
 * A piece's hash and the supernode's signature of it (src/p2p/piece-proof.ts), from the listener
 * (the parent) before the first block of that piece it sends. Both sides name it in their
 * extended handshake: the listener sends proofs only to a dialler that reads them, and the dialler
 * asks for pieces whose hash it does not know yet only of a listener that sends them. Framed here
 * and parsed by WireConnection as the block messages are, in order with them (the library's
 * parser, behind its stream, once handed a proof after the piece message that followed it).
 */
export const PROOF_EXT = 'pollen_proof';
/**
 * A request the parent will not answer, named by index, offset and length as the request was
 * (BEP 6's reject, as an extended message). Under BEP 3 a choke drops every request the parent has
 * not answered, and a request that reaches a choking parent is ignored; a child cannot tell which of
 * its requests crossed the choke, so it gives up all it asked. A parent that chokes and unchokes a
 * child within a round trip (its upload slots moving between blobs) then answers the requests that
 * reached it after the unchoke, and the child drops those blocks as unasked: on the 16-host bed,
 * every such block followed a choke and an unchoke that came together, 12 MB a 64 MiB run. With
 * this extension named by both sides, a choke drops nothing by itself: the parent rejects each
 * request it drops (at the choke, or one that reaches it while it chokes) and answers the rest.
 */
export const REJECT_EXT = 'pollen_reject';
/**
 * Every piece's sha256 at once (32 bytes each, in piece order), from the listener (the parent) as
 * soon as the connection is ready, to a dialler whose extended handshake asked for it
 * (`pollen_want_hashes`: it holds the hash of that list, which the supernode vouches for once its
 * seed has the whole blob, transfer-vouch.ts, but not the hashes). The dialler checks the list
 * against that hash and then knows every piece's hash: no proof per piece, and no Ed25519 check per
 * piece (92 us each here, a third of the piece's own sha256 at 512 KiB). A parent that sent the
 * list sends no proofs on that connection.
 */
export const HASHES_EXT = 'pollen_hashes';
/** The largest hash list: MAX_PIECES hashes (metainfo.ts). */
export const MAX_HASH_LIST_BYTES = MAX_PIECES * 32;
/** A reject's payload: index, offset, length (4 bytes each). */
export const REJECT_BYTES = 12;
/** BEP 10's message id. */
export const MSG_EXTENDED = 20;

/** The part of a bittorrent-protocol wire that registers extensions (wire-connection.ts is the library's one importer). */
interface ExtensibleWire {
  use(ext: new (wire: never) => object): void;
  readonly extendedMapping: Record<number, string>;
}

/** Registers the extensions in `wire`'s handshake; the ids ours gives PROOF_EXT, REJECT_EXT and HASHES_EXT (what the remote side sends them under). */
export function usePollenExtensions(wire: ExtensibleWire): { proof: number; reject: number; hashes: number } {
  wire.use(namedExtension(ACCEPT_EXT));
  wire.use(namedExtension(PROOF_EXT));
  wire.use(namedExtension(REJECT_EXT));
  wire.use(namedExtension(HASHES_EXT));
  const idOf = (name: string): number => Number(Object.keys(wire.extendedMapping).find((id) => wire.extendedMapping[Number(id)] === name));
  return { proof: idOf(PROOF_EXT), reject: idOf(REJECT_EXT), hashes: idOf(HASHES_EXT) };
}

/** A reject as one extended message under the remote side's id for REJECT_EXT (length, 20, id, index, offset, length). */
export function rejectMessage(remoteId: number, index: number, offset: number, length: number): Buffer {
  const frame = Buffer.allocUnsafe(6 + REJECT_BYTES);
  frame.writeUInt32BE(2 + REJECT_BYTES, 0);
  frame[4] = MSG_EXTENDED;
  frame[5] = remoteId;
  frame.writeUInt32BE(index, 6);
  frame.writeUInt32BE(offset, 10);
  frame.writeUInt32BE(length, 14);
  return frame;
}

/** A proof as one extended message under the remote side's id for PROOF_EXT (length, 20, id, 100 bytes). */
export function proofMessage(remoteId: number, proof: PieceProof): Buffer {
  return extendedMessage(remoteId, encodeProof(proof));
}

/** A hash list (ProofSet.hashList) as one extended message under the remote side's id for HASHES_EXT. */
export function hashesMessage(remoteId: number, list: Uint8Array): Buffer {
  return extendedMessage(remoteId, list);
}

function extendedMessage(remoteId: number, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(6 + body.length);
  frame.writeUInt32BE(2 + body.length, 0);
  frame[4] = MSG_EXTENDED;
  frame[5] = remoteId;
  frame.set(body, 6);
  return frame;
}

/** Registers an extension's name in the extended handshake's `m`, so either side may send it. */
function namedExtension(name: string): new (wire: never) => object {
  class PollenExtension {}
  (PollenExtension.prototype as unknown as { name: string }).name = name;
  return PollenExtension;
}
