// Reading small bodies (manifests, token responses, JSON) with a hard size cap.
import { PollenError } from '../errors.ts';

export async function readBodyCapped(body: AsyncIterable<Uint8Array> & { destroy?: () => void }, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) {
      body.destroy?.();
      throw new PollenError(what.startsWith('manifest') ? 'ERR_MANIFEST_TOO_LARGE' : 'ERR_MESSAGE_TOO_LARGE', `${what} exceeds ${maxBytes} bytes`, { maxBytes });
    }
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks, total);
}
