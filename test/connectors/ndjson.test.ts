// Tests the NDJSON parser: fields by schema, extra keys, chunk boundaries anywhere (property test),
// and malformed lines (invalid JSON, wrong types, missing fields) naming source, line and field.

import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NdjsonParser, parseNdjson, parseNdjsonSync } from '../../src/connectors/ndjson.ts';
import { PARSE_DONE, RejectSink, type RejectedRecord } from '../../src/connectors/files.ts';
import { MalformedInputError, schema, t, type Fields, type InferRow, type Schema } from '../../src/index.ts';

const enc = new TextEncoder();

function parseChunks<F extends Fields>(s: Schema<F>, bytes: Uint8Array, cuts: number[]): InferRow<F>[] {
  const p = new NdjsonParser(s, 'test.ndjson', new RejectSink('fail'));
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: InferRow<F>[] = [];
  let prev = 0;
  for (const c of [...points, bytes.length]) {
    p.push(bytes.slice(prev, c));
    while (p.parse(out as (InferRow<F> | RejectedRecord)[], 5) === 0);
    prev = c;
  }
  p.end();
  while (p.parse(out as (InferRow<F> | RejectedRecord)[], 5) !== PARSE_DONE);
  return out;
}

test('fields by schema; extra keys ignored; nullable missing is null; CRLF, BOM and blank lines', () => {
  const s = schema({ id: t.i64(), name: t.string(), ts: t.timestamp(), big: t.i64({ bigint: true }).nullable(), note: t.string().nullable() });
  const text = '\uFEFF{"id":1,"name":"a","ts":"2024-01-02T00:00:00Z","big":"9223372036854775807","x":[1]}\r\n\n  \n{"id":2,"name":"b\\nc","ts":5}';
  assert.equal(parseNdjsonSync(text, { schema: s }), [
    { id: 1, name: 'a', ts: Date.UTC(2024, 0, 2), big: 9223372036854775807n, note: null },
    { id: 2, name: 'b\nc', ts: 5, big: null, note: null },
  ]);
});

test('each malformed line names file, line and field', () => {
  const s = schema({ id: t.i32(), px: t.f64(), ok: t.bool() });
  const cases: [string, number, string | undefined, RegExp][] = [
    ['{"id":1,"px":1,"ok":true}\n{"id":2,"px":"x","ok":true}\n', 2, 'px', /f64/],
    ['{"id":1,"px":1,"ok":true}\n\n{"id":1.5,"px":1,"ok":true}\n', 3, 'id', /i32/],
    ['{"id":1,"px":1}\n', 1, 'ok', /no such key/],
    ['{"id":1,"px":1,"ok":true}\n{"id":1,\n', 2, undefined, /invalid JSON/],
    ['[1,2]\n', 1, undefined, /JSON object/],
  ];
  for (const [text, line, field, re] of cases) {
    try {
      parseNdjsonSync(text, { schema: s, name: 'ev.ndjson' });
      assert.unreachable(text);
    } catch (e) {
      if (!(e instanceof MalformedInputError)) throw e;
      assert.is(e.position.source, 'ev.ndjson');
      assert.is(e.position.line, line, text);
      assert.is(e.position.field, field, text);
      assert.match(e.reason, re);
      assert.match(e.message, `ev.ndjson:${line}`);
    }
  }
  try {
    parseNdjsonSync('{"id":1,"px":1,"ok":true,"zz":0}\n', { schema: s, extraFields: 'error' });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, MalformedInputError);
    assert.is((e as MalformedInputError).position.field, 'zz');
  }
});

test('onError function: bad lines collected, good records all arrive', () => {
  const s = schema({ id: t.i32() });
  const bad: RejectedRecord[] = [];
  const rows = parseNdjsonSync('{"id":1}\nnope\n{"id":"2"}\n{"id":3}\n', { schema: s, onError: (r) => bad.push(r) });
  assert.equal(rows, [{ id: 1 }, { id: 3 }]);
  assert.equal(bad.map((b) => [b.line, b.raw]), [[2, 'nope'], [3, '{"id":"2"}']]);
});

const propSchema = schema({ id: t.i64(), name: t.string(), note: t.string().nullable(), x: t.f64(), ok: t.bool().nullable() });
const row = fc
  .record({
    id: fc.maxSafeInteger(),
    name: fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', 'é', '😀', '\u2028', ' ') , maxLength: 10 }),
    note: fc.option(fc.string({ maxLength: 5 }), { nil: null }),
    x: fc.double({ noNaN: true, noDefaultInfinity: true }),
    ok: fc.option(fc.boolean(), { nil: null }),
  })
  .map((r) => ({ ...r, x: Object.is(r.x, -0) ? 0 : r.x }));

test('property: NDJSON round trip with random chunk splits', () => {
  fc.assert(
    fc.property(fc.array(row, { maxLength: 25 }), fc.array(fc.nat(), { maxLength: 10 }), fc.constantFrom('\n', '\r\n'), (rows, cuts, eol) => {
      const text = rows.map((r) => JSON.stringify(r)).join(eol) + (rows.length ? eol : '');
      assert.equal(parseChunks(propSchema, enc.encode(text), cuts), rows);
    }),
    { numRuns: 300, seed: 77 },
  );
});

test('parseNdjson over a ReadableStream split inside multi-byte characters', async () => {
  const s = schema({ k: t.string() });
  const bytes = enc.encode('{"k":"é😀"}\n{"k":"€"}\n');
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const b of bytes) c.enqueue(new Uint8Array([b]));
      c.close();
    },
  });
  const got: unknown[] = [];
  for await (const recs of parseNdjson(stream, { schema: s })) got.push(...recs);
  assert.equal(got, [{ k: 'é😀' }, { k: '€' }]);
});

test.run();
