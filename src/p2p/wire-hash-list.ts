// The hash list on one wire connection (wire-extensions.ts HASHES_EXT): the dialler asks for it in
// its extended handshake (`pollen_want_hashes`), the listener sends it once as the connection gets
// ready, and then sends that child no proofs. What the list is worth is the transfer's to check
// (peer/p2p/transfer-proofs.ts fromList); here only who may send it, when, once and how long.
import { hashesMessage, MAX_HASH_LIST_BYTES } from './wire-extensions.ts';

/** What the list needs of its connection. */
export interface HashListPort {
  /** Queues a whole frame (nothing once the connection is closed). */
  send(frame: Buffer): void;
  violate(reason: string): void;
  /** Hands a received list on ('hashes'). */
  deliver(list: Buffer): void;
  ready(): boolean;
  /** The id the remote side gave HASHES_EXT (undefined: it does not speak it). */
  remoteId(): number | undefined;
}

export class WireHashList {
  /** Listening side: the dialler asked. */
  private wanted = false;
  /** Sent (listening side) or received (dialling side). */
  private done = false;
  /** Dialling side: a list read before this side was ready. */
  private early: Buffer | undefined;

  constructor(
    private readonly outgoing: boolean,
    /** Dialling side: we asked for it. */
    private readonly asked: boolean,
    private readonly port: HashListPort,
  ) {}

  /** The dialler's extended handshake fields for it. */
  static ask(wantHashes: boolean): { pollen_want_hashes?: 1 } {
    return wantHashes ? { pollen_want_hashes: 1 } : {};
  }

  /** Listening side: the dialler's extended handshake. */
  heard(handshake: Record<string, unknown>): void {
    this.wanted = handshake.pollen_want_hashes === 1;
  }

  /** Listening side: the dialler asked and has not been sent it. */
  get wants(): boolean {
    return !this.outgoing && this.wanted && !this.done && this.port.ready() && this.port.remoteId() !== undefined;
  }

  /** Listening side: this child got the list, so it needs no proofs. */
  get sent(): boolean {
    return !this.outgoing && this.done;
  }

  send(list: Uint8Array): void {
    if (!this.wants) return;
    this.done = true;
    this.port.send(hashesMessage(this.port.remoteId()!, list));
  }

  /**
   * A HASHES_EXT payload: only from a parent we asked, once, whole hashes within MAX_PIECES. A
   * parent sends it after its accept; one of an earlier version, whose library sent the accept a
   * turn late, put it ahead: a list read before the accept is handed on as this side gets ready
   * (readied), ahead of 'ready'.
   */
  receive(payload: Buffer): void {
    if (!this.outgoing || !this.asked || this.done) return this.port.violate('unexpected hash list');
    if (payload.length === 0 || payload.length % 32 !== 0 || payload.length > MAX_HASH_LIST_BYTES) return this.port.violate('malformed hash list');
    this.done = true;
    if (this.port.ready()) this.port.deliver(Buffer.from(payload));
    else this.early = Buffer.from(payload);
  }

  /** Dialling side, as it gets ready: a list that came before. */
  readied(): void {
    const early = this.early;
    this.early = undefined;
    if (early) this.port.deliver(early);
  }
}
