// The part of bittorrent-protocol's untyped API that src/p2p/wire-connection.ts (its only importer) uses.
declare module 'bittorrent-protocol' {
  interface PeerBitField {
    get(index: number): boolean;
  }
  interface WireExtension {
    onExtendedHandshake?(handshake: Record<string, unknown>): void;
    onMessage?(buf: Uint8Array): void;
  }
  export default class Wire {
    constructor(type?: string);
    peerPieces: PeerBitField;
    peerChoking: boolean;
    peerInterested: boolean;
    amChoking: boolean;
    extendedHandshake: Record<string, unknown>;
    peerExtendedMapping: Record<string, number>;
    /** Our extended message ids (as our handshake's `m` names them) to names. */
    extendedMapping: Record<number, string>;
    use(ext: new (wire: Wire) => WireExtension): void;
    handshake(infoHash: string | Uint8Array, peerId: string | Uint8Array, extensions?: Record<string, boolean>): void;
    extended(ext: string | number, obj: Uint8Array | Record<string, unknown>): void;
    bitfield(bits: Uint8Array): void;
    have(index: number): void;
    choke(): void;
    unchoke(): void;
    interested(): void;
    uninterested(): void;
    setKeepAlive(enable: boolean): void;
    /** The library's own parse of bytes written (what its stream's write queues for later): run at once by wire-connection.ts. */
    _write(chunk: Uint8Array, cb: (err?: Error | null) => void): void;
    /** One whole message, its length prefix stripped (`message[0]` is the id), once past the handshake. */
    _onMessage(message: Uint8Array): void;
    /** Where the library puts each message it sends (its stream's push): replaced by wire-connection.ts. */
    _push(data: Uint8Array): unknown;
    destroy(): void;
    on(event: string, fn: (...args: never[]) => void): this;
  }
}
