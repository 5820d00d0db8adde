// Just what WireConnection uses of a socket, fed by a test (emit 'data', or the connection's
// `receive`) and keeping what the connection writes (each write completes at once).
import { EventEmitter } from 'node:events';

export class FakeWireSocket extends EventEmitter {
  readonly remoteAddress = '10.9.8.7';
  readonly remotePort = 4000;
  readonly written: Buffer[] = [];
  destroyed = false;
  setNoDelay(): void {}
  setTimeout(): void {}
  write(chunk: Uint8Array, cb?: () => void): boolean {
    this.written.push(Buffer.from(chunk));
    cb?.();
    return true;
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}
