// Tests the file sources behind env.readCsv / env.readNdjson: reading real files through the
// platform adapter (temp files made and removed here), in-memory and stream inputs, side outputs of
// rejected lines, failure naming the file/line/field, replay from a position, a keyed job end to end,
// and streams whose chunks arrive late (the reader reports them through ready(), so the executor sleeps).

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { csvSource } from '../../src/connectors/csv.ts';
import { platformFiles, type RejectedRecord } from '../../src/connectors/files.ts';
import { JobDefinitionError, MalformedInputError, StreamEnvironment, schema, t, type SourceSpec } from '../../src/index.ts';

const trades = schema({ id: t.i64(), sym: t.string(), px: t.f64(), qty: t.i32() });
const SYMS = ['AAPL', 'MSFT', 'GOOG', 'ÄÖÜ,"q"'];
const N = 20_000;
const csvLines = ['id,sym,px,qty'];
const ndLines: string[] = [];
const want = new Map<string, number>();
for (let i = 0; i < N; i++) {
  const sym = SYMS[i % SYMS.length]!;
  const qty = (i * 7) % 13;
  csvLines.push(`${i},"${sym.replace(/"/g, '""')}",${i / 8},${qty}`);
  ndLines.push(JSON.stringify({ id: i, sym, px: i / 8, qty }));
  want.set(sym, (want.get(sym) ?? 0) + qty);
}
const csvText = csvLines.join('\r\n') + '\r\n';

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-csv-test-'));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function sums(stream: { keyBy(k: 'sym'): { sum(f: 'qty'): { collect(): { results: { sym: string; qty: number }[] } } } }, env: StreamEnvironment): Promise<Map<string, number>> {
  const out = stream.keyBy('sym').sum('qty').collect();
  await env.execute();
  return new Map(out.results.map((r) => [r.sym, r.qty]));
}

test('readCsv(path).keyBy().sum() end to end through the platform file adapter (small chunks)', async () => {
  const path = join(dir, 'trades.csv');
  await writeFile(path, csvText);
  const env = StreamEnvironment.create({ runtimeMode: 'batch', parallelism: 2 });
  const got = await sums(env.readCsv(path, { schema: trades, chunkBytes: 4096 }), env);
  assert.equal(got, want);
});

test('readNdjson over several files split across subtasks', async () => {
  const paths = [0, 1, 2].map((k) => join(dir, `part-${k}.ndjson`));
  const per = Math.ceil(N / 3);
  for (let k = 0; k < 3; k++) await writeFile(paths[k]!, ndLines.slice(k * per, (k + 1) * per).join('\n') + '\n');
  const env = StreamEnvironment.create({ runtimeMode: 'batch', parallelism: 2 });
  const got = await sums(env.readNdjson(paths, { schema: trades, parallelism: 2, chunkBytes: 10_000 }), env);
  assert.equal(got, want);
});

test('in-memory text and a ReadableStream give the same records', async () => {
  const env = StreamEnvironment.create();
  const a = env.readCsv({ text: csvText }, { schema: trades }).collect();
  const bytes = new TextEncoder().encode(csvText);
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += 1000) c.enqueue(bytes.slice(i, i + 1000));
      c.close();
    },
  });
  const b = env.readCsv({ stream, name: 'piped' }, { schema: trades }).collect();
  await env.execute();
  assert.is(a.results.length, N);
  assert.equal(b.results, a.results);
  assert.equal(a.results[3], { id: 3, sym: SYMS[3], px: 3 / 8, qty: 21 % 13 });
});

/** A stream that enqueues `parts` one by one, `delayMs` apart, starting `delayMs` after the first pull. */
function slowStream(parts: Uint8Array[], delayMs: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      await new Promise((res) => setTimeout(res, delayMs));
      if (i < parts.length) c.enqueue(parts[i++]!);
      else c.close();
    },
  });
}

/** A source spec whose readers count their poll() calls (and pass ready() through). */
function countingPolls<T>(spec: SourceSpec<T>): { spec: SourceSpec<T>; polls: () => number } {
  let polls = 0;
  return {
    polls: () => polls,
    spec: {
      bounded: spec.bounded,
      replayable: spec.replayable,
      createReader(s, p) {
        const r = spec.createReader(s, p);
        return {
          open: (ctx) => r.open?.(ctx),
          poll: (out, max) => {
            polls++;
            return r.poll(out, max);
          },
          ready: () => r.ready?.(),
          close: () => r.close?.(),
        };
      },
    },
  };
}

test('a stream whose chunks arrive late: the source sleeps on ready() instead of polling in a loop', async () => {
  const bytes = new TextEncoder().encode(csvText);
  const cut = [0, 100, bytes.length >> 1, bytes.length - 7, bytes.length]; // 200 ms until the first chunk
  const parts = cut.slice(1).map((end, k) => bytes.slice(cut[k], end));
  const spec = csvSource({ stream: slowStream(parts, 50), name: 'slow' }, { schema: trades }, { files: () => platformFiles() });
  const { spec: counted, polls } = countingPolls(spec as SourceSpec<{ sym: string; qty: number }>); // no rejects: onError 'fail'
  const env = StreamEnvironment.create({ runtimeMode: 'batch' });
  const got = await sums(env.fromSource(counted, 'Source: slow'), env);
  assert.equal(got, want);
  // about one poll per chunk wait plus one per batch of 1024 records (20); spinning would be thousands
  assert.ok(polls() < 50, `polled ${polls()} times`);
});

test('readNdjson from a stream enqueued later by a timer gives every record', async () => {
  const text = ndLines.join('\n') + '\n';
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => void (ctl = c) });
  setTimeout(() => {
    const b = new TextEncoder().encode(text);
    ctl.enqueue(b.slice(0, 12345));
    setTimeout(() => {
      ctl.enqueue(b.slice(12345));
      ctl.close();
    }, 30);
  }, 100);
  const env = StreamEnvironment.create({ runtimeMode: 'batch', parallelism: 2 });
  const got = await sums(env.readNdjson({ stream }, { schema: trades }), env);
  assert.equal(got, want);
});

test('a malformed line fails the job naming file, line and field', async () => {
  const path = join(dir, 'bad.csv');
  await writeFile(path, 'id,sym,px,qty\n1,A,1.5,2\n2,B,oops,3\n');
  const env = StreamEnvironment.create();
  env.readCsv(path, { schema: trades }).collect();
  try {
    await env.execute();
    assert.unreachable();
  } catch (e) {
    assert.instance(e, MalformedInputError);
    const m = e as MalformedInputError;
    assert.is(m.position.source, path);
    assert.is(m.position.line, 3);
    assert.is(m.position.field, 'px');
    assert.is(m.text, 'oops');
    assert.match(m.message, /Source: CSV/);
  }
});

test("onError 'side-output' without a sink on .rejected is refused, never silent loss", async () => {
  const env = StreamEnvironment.create();
  const src = env.readCsv({ text: 'id,sym,px,qty\n1,A,1.5,2\nx,B,2,3\n', name: 'bad.csv' }, { schema: trades, onError: 'side-output' });
  src.collect();
  const err = await env.execute().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof JobDefinitionError, String(err));
  assert.match((err as Error).message, /bad\.csv.*\.rejected has no sink/);
  const env2 = StreamEnvironment.create();
  const src2 = env2.readCsv({ text: 'id,sym,px,qty\n1,A,1.5,2\nx,B,2,3\n', name: 'bad.csv' }, { schema: trades, onError: 'side-output' });
  const good = src2.collect();
  const bad = src2.rejected.collect();
  await env2.execute();
  assert.is(good.results.length, 1);
  assert.is(bad.results.length, 1);
  assert.is(bad.results[0]!.line, 3);
});

test("onError 'side-output': rejected lines on .rejected, every good record arrives", async () => {
  const lines = ['id,sym,px,qty'];
  const good: unknown[] = [];
  for (let i = 0; i < 3000; i++) {
    if (i % 100 === 7) lines.push(`${i},X,not-a-number,1`);
    else if (i % 100 === 8) lines.push(`${i},X,1`);
    else {
      lines.push(`${i},S,${i},1`);
      good.push({ id: i, sym: 'S', px: i, qty: 1 });
    }
  }
  for (const reader of ['csv', 'ndjson'] as const) {
    const env = StreamEnvironment.create();
    const src =
      reader === 'csv'
        ? env.readCsv({ text: lines.join('\n'), name: 'mixed.csv' }, { schema: trades, onError: 'side-output' })
        : env.readNdjson({ text: lines.slice(1).map((l) => { const [id, sym, px, qty] = l.split(','); return px === '1' && qty === undefined ? `{"id":${id}` : `{"id":${id},"sym":"${sym}","px":${Number.isNaN(Number(px)) ? `"${px}"` : px},"qty":${qty}}`; }).join('\n'), name: 'mixed.csv' }, { schema: trades, onError: 'side-output' });
    const ok = src.collect();
    const bad = src.rejected.collect();
    const result = await env.execute();
    assert.equal(ok.results, good, reader);
    assert.is(bad.results.length, 60, reader);
    const first = bad.results[0] as RejectedRecord;
    assert.is(first.source, 'mixed.csv');
    assert.is(first.line, reader === 'csv' ? 9 : 8);
    if (reader === 'csv') assert.is(first.field, 'px');
    assert.ok(result.operators.some((o) => o.name === 'Rejected' && o.recordsOut === 60), reader);
  }
});

test('replay: a reader restored at position() continues exactly where it stopped', () => {
  const spec = csvSource({ text: csvText }, { schema: trades, chunkBytes: 777 }, { files: () => platformFiles() });
  const all: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  const r1 = spec.createReader(0, 1);
  r1.poll(all, 1234);
  r1.poll(all, 1000);
  const pos = r1.position();
  assert.ok(pos.byteOffset > 0 && pos.line === all.length + 2 && pos.header?.length === 4);
  const r2 = spec.createReader(0, 1, pos);
  while (r2.poll(all, 4096));
  assert.is(all.length, N);
  assert.equal(all.map((r) => (r as { id: number }).id), Array.from({ length: N }, (_, i) => i));
});

test('replay from a file position after a restart', async () => {
  const path = join(dir, 'replay.csv');
  await writeFile(path, csvText);
  const spec = csvSource(path, { schema: trades, chunkBytes: 5000 }, { files: () => platformFiles() });
  const drain = async (r: ReturnType<typeof spec.createReader>, out: any[], limit = Infinity) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    while (out.length < limit) {
      if (!r.poll(out, Math.min(512, limit - out.length))) return;
      await new Promise((res) => setTimeout(res, 0));
    }
  };
  const first: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  const r1 = spec.createReader(0, 1);
  await drain(r1, first, 5000);
  const pos = r1.position();
  r1.close?.();
  const rest: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  await drain(spec.createReader(0, 1, pos), rest);
  assert.is(first.length + rest.length, N);
  assert.is((rest[0] as { id: number }).id, first.length);
});

test('no file system (workerd, browsers): a clear error; missing file: names the path', async () => {
  const env = StreamEnvironment.create();
  env.readCsv('/data/x.csv', { schema: trades, platform: {} }).collect();
  try {
    await env.execute();
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /no file system/);
  }
  const env2 = StreamEnvironment.create();
  env2.readNdjson(join(dir, 'missing.ndjson'), { schema: trades }).collect();
  try {
    await env2.execute();
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /missing\.ndjson/);
  }
});

test.run();
