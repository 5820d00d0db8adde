// The seed channel's answer frames (src/p2p/seed-channel-frames.ts): however the stream is cut into
// reads, the reader hands on the same heads, the same bytes in order and the same ends; a frame of
// an unknown kind, a head longer than its bound, or JSON without an id is refused.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ANSWER_END, ANSWER_HEAD, dataFrameHead, jsonAnswerFrame, MAX_ANSWER_JSON_BYTES, SeedAnswerReader } from '../../../../src/p2p/seed-channel-frames.ts';

type Event = ['head', unknown] | ['data', string] | ['end', unknown];

function read(stream: Buffer, cuts: number[]): Event[] {
  const events: Event[] = [];
  const reader = new SeedAnswerReader({ head: (h) => events.push(['head', h]), data: (b) => events.push(['data', b.toString('hex')]), end: (e) => events.push(['end', e]) });
  let pos = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < stream.length)].sort((a, b) => a - b)) {
    reader.push(stream.subarray(pos, cut));
    pos = cut;
  }
  reader.push(stream.subarray(pos));
  // Consecutive data events are one run of bytes, however they were cut.
  const merged: Event[] = [];
  for (const e of events) {
    const last = merged[merged.length - 1];
    if (e[0] === 'data' && last?.[0] === 'data') last[1] += e[1];
    else merged.push([...e] as Event);
  }
  return merged;
}

describe('seed channel answer frames', () => {
  it('reads the same answers however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ status: fc.constantFrom(200, 404), chunks: fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 4 }) }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(4_000), { maxLength: 30 }),
        (answers, cuts) => {
          const parts: Buffer[] = [];
          const want: Event[] = [];
          answers.forEach((a, i) => {
            const head = a.status === 200 ? { i, s: 200, n: a.chunks.reduce((n, c) => n + c.length, 0) } : { i, s: 404, b: { errors: [] } };
            parts.push(jsonAnswerFrame(ANSWER_HEAD, JSON.stringify(head)));
            want.push(['head', head]);
            if (a.status !== 200) return;
            let hex = '';
            for (const c of a.chunks) {
              parts.push(dataFrameHead(c.length), Buffer.from(c));
              hex += Buffer.from(c).toString('hex');
            }
            if (hex) want.push(['data', hex]);
            parts.push(jsonAnswerFrame(ANSWER_END, JSON.stringify({ i, h: 'f'.repeat(64) })));
            want.push(['end', { i, h: 'f'.repeat(64) }]);
          });
          expect(read(Buffer.concat(parts), cuts)).toEqual(want);
        },
      ),
    );
  });

  it('refuses a frame of an unknown kind, a head over its bound, an empty answer and one without an id', () => {
    const kind = Buffer.from([0, 0, 0, 1, 9, 0x7b]);
    const longJson = Buffer.alloc(5);
    longJson.writeUInt32BE(MAX_ANSWER_JSON_BYTES + 1);
    longJson.writeUInt8(ANSWER_HEAD, 4);
    const empty = Buffer.from([0, 0, 0, 0, ANSWER_END]);
    for (const bad of [kind, longJson, empty, jsonAnswerFrame(ANSWER_HEAD, '{"s":200}'), jsonAnswerFrame(ANSWER_HEAD, '{"i":1}'), jsonAnswerFrame(ANSWER_END, 'null')]) {
      expect(() => read(bad, [])).toThrow();
    }
  });
});
