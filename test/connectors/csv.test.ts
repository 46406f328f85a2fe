// Tests the CSV parser: RFC 4180 cases, conversion by schema, chunk boundaries anywhere (property
// tests: records → CSV text → random byte splits → parse == records), and malformed-input errors that
// name the source, line and field (thrown, or handed to an onError function).

import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CsvParser, parseCsv, parseCsvSync, csvToBatches } from '../../src/connectors/csv.ts';
import { PARSE_DONE, RejectSink, type RejectedRecord } from '../../src/connectors/files.ts';
import { decodeBatches } from '../../src/core/rows.ts';
import { MalformedInputError, schema, t, type Fields, type InferRow, type Schema } from '../../src/index.ts';

const enc = new TextEncoder();

/** Parses `bytes` fed in the given chunks (cut points), synchronously. */
function parseChunks<F extends Fields>(s: Schema<F>, bytes: Uint8Array, cuts: number[], opts: { header?: boolean; delimiter?: string } = {}): InferRow<F>[] {
  const p = new CsvParser(s, 'test.csv', new RejectSink('fail'), opts);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: InferRow<F>[] = [];
  let prev = 0;
  const drain = () => {
    while (p.parse(out as (InferRow<F> | RejectedRecord)[], 7) === 0);
  };
  for (const c of [...points, bytes.length]) {
    p.push(bytes.slice(prev, c));
    drain();
    prev = c;
  }
  p.end();
  while (p.parse(out as (InferRow<F> | RejectedRecord)[], 7) !== PARSE_DONE);
  return out;
}

test('RFC 4180: quotes, escaped quotes, CRLF, quoted newlines, BOM, header', () => {
  const s = schema({ a: t.string(), b: t.i32(), c: t.string().nullable() });
  const text = '\uFEFFa,b,c\r\n"x,y",1,"he said ""hi"""\r\n"multi\r\nline",2,\r\nplain,3,""\n';
  assert.equal(parseCsvSync(text, { schema: s }), [
    { a: 'x,y', b: 1, c: 'he said "hi"' },
    { a: 'multi\r\nline', b: 2, c: null },
    { a: 'plain', b: 3, c: '' },
  ]);
});

test('header maps columns by name; extra columns ignored; missing nullable is null', () => {
  const s = schema({ id: t.i64(), name: t.string(), note: t.string().nullable() });
  assert.equal(parseCsvSync('name,extra,id\nann,zz,7\n', { schema: s }), [{ id: 7, name: 'ann', note: null }]);
  try {
    parseCsvSync('id,note\n1,x\n', { schema: s, name: 'h.csv' });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, MalformedInputError);
    assert.match((e as Error).message, /h\.csv:1/);
    assert.match((e as Error).message, /name/);
  }
});

test('no header, delimiter option, lone CR, no final newline, blank lines skipped', () => {
  const s = schema({ a: t.i32(), b: t.string() });
  assert.equal(parseCsvSync('1;x\r\r\n2;"y;z"\r3;w', { schema: s, header: false, delimiter: ';' }), [
    { a: 1, b: 'x' },
    { a: 2, b: 'y;z' },
    { a: 3, b: 'w' },
  ]);
  assert.equal(parseCsvSync('a\tb\n\n1\t\n', { schema: s, delimiter: '\t' }), [{ a: 1, b: '' }]);
});

test('conversions: i32, i64 (number and bigint), f64, bool, timestamp, nullable', () => {
  const s = schema({
    i: t.i32(), l: t.i64(), big: t.i64({ bigint: true }), f: t.f64(), ok: t.bool(), ts: t.timestamp(), n: t.f64().nullable(),
  });
  const rows = parseCsvSync(
    'i,l,big,f,ok,ts,n\n' +
      '-2147483648,9007199254740991,-9223372036854775808,1.25e3,TRUE,2024-02-29T12:30:00.5+01:00,\n' +
      '+7,-12,42,-0.1,0,1700000000000,Infinity\n' +
      '0,0,0,.5,false,2024-01-02,NaN\n',
    { schema: s },
  );
  assert.equal(rows[0], { i: -2147483648, l: 9007199254740991, big: -9223372036854775808n, f: 1250, ok: true, ts: Date.UTC(2024, 1, 29, 11, 30, 0, 500), n: null });
  assert.equal(rows[1], { i: 7, l: -12, big: 42n, f: -0.1, ok: false, ts: 1700000000000, n: Infinity });
  assert.equal(rows[2]!.f, 0.5);
  assert.equal(rows[2]!.ts, Date.UTC(2024, 0, 2));
  assert.ok(Number.isNaN(rows[2]!.n));
});

test('each malformed value names file, line, column, field and text', () => {
  const s = schema({ id: t.i32(), px: t.f64(), ok: t.bool(), ts: t.timestamp() });
  const cases: [string, number, number, string, string][] = [
    ['id,px,ok,ts\n1,2,true,5\n2,abc,true,5\n', 3, 2, 'px', 'abc'],
    ['id,px,ok,ts\n3000000000,1,true,5\n', 2, 1, 'id', '3000000000'],
    ['id,px,ok,ts\n1,1,yes,5\n', 2, 3, 'ok', 'yes'],
    ['id,px,ok,ts\n1,1,true,2024-13-01\n', 2, 4, 'ts', '2024-13-01'],
    ['id,px,ok,ts\n1.5,1,true,5\n', 2, 1, 'id', '1.5'],
    ['id,px,ok,ts\n1,1,true,5\n\n1,,true,5\n', 4, 2, 'px', ''],
  ];
  for (const [text, line, column, field, bad] of cases) {
    try {
      parseCsvSync(text, { schema: s, name: 'trades.csv' });
      assert.unreachable(`no error for ${JSON.stringify(text)}`);
    } catch (e) {
      if (!(e instanceof MalformedInputError)) throw e;
      assert.is(e.position.source, 'trades.csv');
      assert.is(e.position.line, line, text);
      assert.is(e.position.column, column, text);
      assert.is(e.position.field, field);
      assert.is(e.text, bad);
      assert.match(e.message, `trades.csv:${line}`);
      assert.is(e.domain, 'user');
    }
  }
});

test('structural errors: wrong field count, unterminated quote, junk after a quote', () => {
  const s = schema({ a: t.i32(), b: t.string() });
  const expectErr = (text: string, line: number, re: RegExp) => {
    try {
      parseCsvSync(text, { schema: s, name: 'x.csv' });
      assert.unreachable();
    } catch (e) {
      if (!(e instanceof MalformedInputError)) throw e;
      assert.is(e.position.line, line, text);
      assert.match(e.reason, re);
    }
  };
  expectErr('a,b\n1,x\n2,y,z\n', 3, /expected 2 fields/);
  expectErr('a,b\n1,x\n2,"y\n3,z\n', 3, /unterminated/);
  expectErr('a,b\n1,"x"y\n', 2, /after a closing quote/);
});

test('onError function collects bad lines and all good records arrive', () => {
  const s = schema({ a: t.i32(), b: t.string() });
  const bad: RejectedRecord[] = [];
  const rows = parseCsvSync('a,b\n1,x\nq,y\n3,z,extra\n4,"w"!\n5,v\n6,"open\n', { schema: s, name: 'm.csv', onError: (r) => bad.push(r) });
  assert.equal(rows, [{ a: 1, b: 'x' }, { a: 5, b: 'v' }]);
  assert.equal(bad.map((r) => [r.line, r.field ?? null, r.source]), [
    [3, 'a', 'm.csv'],
    [4, null, 'm.csv'],
    [5, 'b', 'm.csv'],
    [7, 'b', 'm.csv'],
  ]);
  assert.is(bad[0]!.raw, 'q,y');
  assert.is(bad[1]!.raw, '3,z,extra');
});

// ---- property tests: records → CSV → random splits → parse == records

const propSchema = schema({ id: t.i64(), name: t.string(), note: t.string().nullable(), x: t.f64(), ok: t.bool().nullable(), n: t.i32().nullable() });
type PropRow = InferRow<typeof propSchema.fields>;

const text = fc.string({ unit: fc.constantFrom('a', 'Z', ',', '"', '\n', '\r', ' ', 'é', '€', '😀', '\t', ';', 'x') , maxLength: 12 });
const row: fc.Arbitrary<PropRow> = fc.record({
  id: fc.maxSafeInteger(),
  name: text,
  note: fc.option(text, { nil: null }),
  x: fc.double({ noNaN: true }),
  ok: fc.option(fc.boolean(), { nil: null }),
  n: fc.option(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { nil: null }),
}).map((r) => ({ ...r })); // fc.record makes null-prototype objects

function csvField(v: unknown, delim: string, forceQuote: boolean): string {
  if (v === null) return '';
  const s = String(v);
  if (forceQuote || s === '' || s.includes(delim) || /["\r\n]/.test(s)) return `"${s.replace(/"/g, '""')}"`;
  return s;
}

function toCsv(rows: PropRow[], delim: string, eol: string, quoteAll: boolean, header: boolean): string {
  const names = propSchema.names;
  const lines = header ? [names.join(delim)] : [];
  for (const r of rows) lines.push(names.map((n) => csvField((r as Record<string, unknown>)[n], delim, quoteAll && (r as Record<string, unknown>)[n] !== null)).join(delim));
  return lines.join(eol) + (rows.length > 0 || header ? eol : '');
}

test('property: CSV round trip with random chunk splits (quotes, delimiters, newlines, non-ASCII, "" vs null)', () => {
  fc.assert(
    fc.property(
      fc.array(row, { maxLength: 30 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.constantFrom(',', ';', '\t'),
      fc.constantFrom('\n', '\r\n'),
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
      (rows, cuts, delim, eol, quoteAll, header, bom) => {
        // an all-empty single record would be a blank line; our schema has 6 fields so never happens
        const body = toCsv(rows, delim, eol, quoteAll, header);
        const bytes = enc.encode((bom ? '\uFEFF' : '') + body);
        const got = parseChunks(propSchema, bytes, cuts, { header, delimiter: delim });
        assert.equal(got, rows);
      },
    ),
    { numRuns: 300, seed: 4181 },
  );
});

test('property: every single split point of a tricky input gives the same records', () => {
  const s = schema({ a: t.string(), b: t.string().nullable(), c: t.f64() });
  const text = 'a,b,c\r\n"q""\r\n,é€😀",,1.5\r\n"",x,-2e-3\r\nz,"",3\r\n';
  const bytes = enc.encode(text);
  const want = parseChunks(s, bytes, []);
  assert.equal(want, [
    { a: 'q"\r\n,é€😀', b: null, c: 1.5 },
    { a: '', b: 'x', c: -0.002 },
    { a: 'z', b: '', c: 3 },
  ]);
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j += 3) assert.equal(parseChunks(s, bytes, [i, j]), want, `split at ${i}, ${j}`);
  }
});

test('parseCsv over a ReadableStream and an async iterable of tiny chunks', async () => {
  const s = schema({ k: t.string(), v: t.i32() });
  const bytes = enc.encode('k,v\n"é,1",1\nb,2\n');
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += 2) c.enqueue(bytes.slice(i, i + 2));
      c.close();
    },
  });
  const got: unknown[] = [];
  for await (const recs of parseCsv(stream, { schema: s })) got.push(...recs);
  assert.equal(got, [{ k: 'é,1', v: 1 }, { k: 'b', v: 2 }]);
  async function* gen() {
    for (const b of bytes) yield new Uint8Array([b]);
  }
  const got2: unknown[] = [];
  for await (const recs of parseCsv(gen(), { schema: s }, 1)) got2.push(...recs);
  assert.equal(got2, got);
});

test('csvToBatches writes binary batches that decode to the records', async () => {
  const s = schema({ id: t.i64(), name: t.string().nullable(), px: t.f64() });
  const lines = ['id,name,px'];
  const want: unknown[] = [];
  for (let i = 0; i < 2000; i++) {
    const name = i % 5 === 0 ? null : `n${i}`;
    lines.push(`${i},${name ?? ''},${i / 4}`);
    want.push({ id: i, name, px: i / 4 });
  }
  const batches: Uint8Array[] = [];
  for await (const b of csvToBatches(lines.join('\n'), { schema: s, batchBytes: 4096 })) batches.push(b);
  assert.ok(batches.length > 1);
  assert.equal(decodeBatches(s, batches), want);
});

test.run();
