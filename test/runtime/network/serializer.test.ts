// Owns the tests of network buffer contents: records (binary rows and MessagePack) with and without
// timestamps round-trip through buffers of many sizes, large records go alone in unpooled buffers,
// and bad records and corrupt buffers are typed errors naming where.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CorruptBatchError, FieldValueError, SchemaMismatchError } from '../../../src/core/errors.ts';
import { schema, t } from '../../../src/core/schema.ts';
import {
  createDeserializer,
  createSerializer,
  FLAG_UNPOOLED,
  inspectBuffer,
  NET_HEADER_BYTES,
  RecordEncodeError,
  type RecordSerializer,
} from '../../../src/runtime/network/serializer.ts';
import { forSeeds, type Rng } from '../../reference/random.ts';

const trade = schema({
  id: t.i64(),
  symbol: t.string(),
  price: t.f64(),
  note: t.string().nullable(),
  extra: t.any().nullable(),
  at: t.timestamp(),
});

/** Packs all records into buffers of `size` bytes the way a writer does; large ones go alone. */
function pack<T>(ser: RecordSerializer<T>, records: T[], timestamps: number[] | undefined, size: number): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  let i = 0;
  ser.begin(new ArrayBuffer(size));
  while (i < records.length) {
    i = ser.write(records, timestamps, i, records.length);
    if (i === records.length) break;
    if (ser.count === 0) {
      out.push(ser.encodeLarge(records[i]!, timestamps?.[i]));
      i++;
    } else {
      out.push(ser.finish());
      ser.begin(new ArrayBuffer(size));
    }
  }
  if (ser.count > 0) out.push(ser.finish());
  return out;
}

function unpack<T>(de: ReturnType<typeof createDeserializer<T>>, buffers: ArrayBuffer[]): { records: T[]; timestamps: number[]; stamped: boolean[] } {
  const records: T[] = [];
  const timestamps: number[] = [];
  const stamped: boolean[] = [];
  for (const b of buffers) {
    const d = de.decode(b);
    records.push(...d.records);
    for (let i = 0; i < d.records.length; i++) {
      timestamps.push(d.timestamps ? d.timestamps[i]! : NaN);
      stamped.push(d.timestamps !== undefined);
    }
  }
  return { records, timestamps, stamped };
}

function randomTrade(rng: Rng, i: number) {
  return {
    id: i,
    symbol: rng.pick(['AAPL', 'MSFT', 'ß€😀', '', 'x'.repeat(rng.int(200))]),
    price: rng.bool(0.1) ? -0 : rng.u32() / 7,
    note: rng.bool(0.3) ? null : 'n' + rng.int(1000),
    extra: rng.bool(0.5) ? null : { k: rng.int(10), list: [1, 'two', null] },
    at: 1_700_000_000_000 + i,
  };
}

function randomAny(rng: Rng, i: number): unknown {
  switch (rng.int(7)) {
    case 0: return i;
    case 1: return 'value ' + 'é'.repeat(rng.int(50));
    case 2: return { i, nested: { a: [1, 2, { b: null }] }, flag: rng.bool() };
    case 3: return [i, -i, i / 3];
    case 4: return null;
    case 5: return rng.bytes(rng.int(40));
    default: return { id: i, ts: new Date(1_700_000_000_000 + i) };
  }
}

test('MessagePack records with timestamps round-trip through buffers of many sizes', async () => {
  await forSeeds('any round trip', 8, (rng) => {
    const n = 2000;
    const records = Array.from({ length: n }, (_, i) => randomAny(rng, i));
    const ts = Array.from({ length: n }, (_, i) => (rng.bool(0.1) ? NaN : 1_000 + i * 3));
    const size = rng.pick([256, 512, 1024, 4096, 32768]);
    const buffers = pack(createSerializer(), records, ts, size);
    for (const b of buffers) {
      const c = inspectBuffer(b);
      assert.is(c.format, 'any');
      assert.ok(c.unpooled || b.byteLength === size);
    }
    const back = unpack(createDeserializer(), buffers);
    assert.equal(back.records, records);
    for (let i = 0; i < n; i++) assert.ok(Object.is(back.timestamps[i], ts[i]), `timestamp ${i}`);
  });
});

test('binary rows with timestamps round-trip; rows that leave no room for their timestamp move to the next buffer', async () => {
  await forSeeds('rows round trip', 8, (rng) => {
    const n = 1500;
    const records = Array.from({ length: n }, (_, i) => randomTrade(rng, i));
    const withTs = rng.bool(0.7);
    const ts = withTs ? records.map((r) => r.at - rng.int(100)) : undefined;
    const size = rng.pick([512, 1024, 2048, 32768]);
    const ser = createSerializer({ schema: trade });
    const buffers = pack(ser, records, ts, size);
    assert.is(ser.recordsWritten, n);
    for (const b of buffers) {
      const c = inspectBuffer(b);
      assert.is(c.format, 'rows');
      assert.is(c.timestamps !== undefined, withTs);
    }
    const back = unpack(createDeserializer({ schema: trade }), buffers);
    assert.equal(back.records, records);
    if (ts) assert.equal(back.timestamps, ts);
    else assert.ok(back.stamped.every((s) => !s));
  });
});

test('buffers fill up: many records per buffer, and every buffer but the last is nearly full', () => {
  const records = Array.from({ length: 10_000 }, (_, i) => ({ id: i, v: i * 2 }));
  const buffers = pack(createSerializer(), records, undefined, 32768);
  assert.ok(buffers.length > 1 && buffers.length < 20, `${buffers.length} buffers`);
  for (const b of buffers.slice(0, -1)) {
    const used = new Uint32Array(b, 4, 1)[0]!;
    assert.ok(used > 32768 - 64, `buffer used ${used} bytes`);
  }
});

test('timestamps given for later records only: earlier records in the buffer read NaN', () => {
  for (const opts of [{}, { schema: schema({ x: t.i32() }) }]) {
    const ser = createSerializer<{ x: number }>(opts);
    ser.begin(new ArrayBuffer(4096));
    const a = [{ x: 1 }, { x: 2 }];
    assert.is(ser.write(a, undefined, 0, 2), 2);
    assert.is(ser.write([{ x: 3 }], [42], 0, 1), 1);
    assert.is(ser.write([{ x: 4 }], undefined, 0, 1), 1);
    const d = createDeserializer<{ x: number }>(opts).decode(ser.finish());
    assert.equal(d.records, [{ x: 1 }, { x: 2 }, { x: 3 }, { x: 4 }]);
    assert.equal([...d.timestamps!].map((v) => (Number.isNaN(v) ? 'NaN' : v)), ['NaN', 'NaN', 42, 'NaN']);
  }
});

test('a record larger than a buffer travels alone in an exactly sized unpooled buffer', () => {
  for (const opts of [{}, { schema: schema({ id: t.i32(), blob: t.string() }) }]) {
    const big = { id: 7, blob: 'z'.repeat(5000) };
    const records = [{ id: 1, blob: 'a' }, big, { id: 2, blob: 'b' }];
    const buffers = pack(createSerializer(opts), records, [10, 20, 30], 1024);
    assert.is(buffers.length, 3);
    const c = inspectBuffer(buffers[1]!);
    assert.ok(c.unpooled);
    assert.is(c.count, 1);
    assert.ok(buffers[1]!.byteLength > 1024);
    assert.is(new Uint8Array(buffers[1]!, 17, 1)[0]! & FLAG_UNPOOLED, FLAG_UNPOOLED);
    const back = unpack(createDeserializer(opts), buffers);
    assert.equal(back.records, records);
    assert.equal(back.timestamps, [10, 20, 30]);
  }
});

test('an empty buffer can be sealed and decodes to no records', () => {
  for (const opts of [{}, { schema: trade }]) {
    const ser = createSerializer(opts);
    ser.begin(new ArrayBuffer(1024));
    const d = createDeserializer(opts).decode(ser.finish());
    assert.equal(d.records, []);
    assert.is(d.timestamps, undefined);
  }
});

test('a value MessagePack cannot encode is a RecordEncodeError naming operator, subtask and record', () => {
  const ser = createSerializer({ operator: 'Map(enrich)', subtask: 3 });
  ser.begin(new ArrayBuffer(1024));
  const records = [{ a: 1 }, { a: 2 }, { a: () => 1 }, { a: 4 }];
  assert.throws(
    () => ser.write(records, undefined, 0, 4),
    (e: unknown) => e instanceof RecordEncodeError && /operator Map\(enrich\)/.test(e.message) && e.context.subtask === 3 && e.context.recordIndex === 2 && /function/.test(e.message),
  );
  assert.is(ser.position, 2);
  assert.is(ser.count, 2);
  // skip it and go on: the buffer stays valid
  assert.is(ser.write(records, undefined, 3, 4), 4);
  assert.equal(createDeserializer().decode(ser.finish()).records, [{ a: 1 }, { a: 2 }, { a: 4 }]);
});

test('a value that does not fit the schema is a FieldValueError naming field, operator and record', () => {
  const s = schema({ id: t.i32(), name: t.string() });
  const ser = createSerializer({ schema: s, operator: 'Source(users)', subtask: 1 });
  ser.begin(new ArrayBuffer(1024));
  const records = [{ id: 1, name: 'a' }, { id: 'two', name: 'b' }];
  assert.throws(
    () => ser.write(records as never, undefined, 0, 2),
    (e: unknown) => e instanceof FieldValueError && e.field === 'id' && e.context.operator === 'Source(users)' && e.context.recordIndex === 1,
  );
  assert.is(ser.position, 1);
  assert.equal(createDeserializer({ schema: s }).decode(ser.finish()).records, [{ id: 1, name: 'a' }]);
});

test('corrupt buffers, the wrong format and another schema are typed errors', () => {
  const s = schema({ id: t.i32() });
  const ser = createSerializer({ schema: s });
  ser.begin(new ArrayBuffer(512));
  ser.write([{ id: 1 }, { id: 2 }], [5, 6], 0, 2);
  const good = ser.finish();
  const de = createDeserializer({ schema: s, operator: 'Sink', subtask: 0 });
  assert.equal(de.decode(good.slice(0)).records, [{ id: 1 }, { id: 2 }]);

  const corrupt = (mutate: (u32: Uint32Array) => void, pattern: RegExp) => {
    const b = good.slice(0);
    mutate(new Uint32Array(b));
    assert.throws(() => de.decode(b), (e: unknown) => e instanceof CorruptBatchError && pattern.test((e as Error).message) && /operator Sink/.test((e as Error).message), pattern.source);
  };
  corrupt((h) => { h[0] = 0; }, /bad magic/);
  corrupt((h) => { h[1] = 100000; }, /in use/);
  corrupt((h) => { h[2] = 3; }, /do not make|records/);
  corrupt((h) => { h[4] = 9; }, /unknown format/);
  corrupt((h) => { h[4] = 1 | (0x80 << 8); }, /unknown flags/);
  corrupt((h) => { h[NET_HEADER_BYTES / 4 + 2] = 5; }, /rowCount|records/);
  assert.throws(() => de.decode(new ArrayBuffer(0)), /empty or detached/);
  assert.throws(() => createDeserializer().decode(good.slice(0)), (e: unknown) => e instanceof SchemaMismatchError);
  assert.throws(() => createDeserializer({ schema: schema({ id: t.string() }) }).decode(good.slice(0)), (e: unknown) => e instanceof SchemaMismatchError);
});

test('undefined records arrive as null (MessagePack has no undefined)', () => {
  const buffers = pack(createSerializer(), [undefined, 1], undefined, 256);
  assert.equal(createDeserializer().decode(buffers[0]!).records, [null, 1]);
});

test.run();
