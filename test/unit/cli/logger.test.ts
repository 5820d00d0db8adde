import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, defaultLogFormat } from '../../../cli/logger.ts';

function sink(): { stream: Writable & { write: Writable['write'] }; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('the process logger', () => {
  it('is pretty on a terminal and JSON otherwise', () => {
    expect(defaultLogFormat({ isTTY: true })).toBe('pretty');
    expect(defaultLogFormat({ isTTY: false })).toBe('json');
    expect(defaultLogFormat({})).toBe('json');
  });

  it('writes one JSON object per line with the fields, secrets redacted', () => {
    const out = sink();
    const logger = createLogger('info', 'pollen-test', 'json', out.stream);
    logger.info({ path: '/v2/x', headers: { authorization: 'Bearer abc' } }, 'access');
    const line = JSON.parse(out.text().trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ msg: 'access', path: '/v2/x', name: 'pollen-test', headers: { authorization: '[redacted]' } });
  });

  it('writes a readable line with level, message and fields when pretty', () => {
    const out = sink();
    const logger = createLogger('info', 'pollen-test', 'pretty', out.stream);
    logger.info({ status: 200, headers: { authorization: 'Bearer abc' } }, 'access');
    logger.debug('below the level');
    const text = out.text();
    expect(text).toMatch(/INFO.*access/);
    expect(text).toContain('status');
    expect(text).not.toContain('Bearer abc');
    expect(text).not.toContain('below the level');
    expect(() => JSON.parse(text.trim())).toThrow();
  });
});
