// Owns the serialization benchmark: Sluice binary rows vs @msgpack/msgpack vs JSON (+ UTF-8), on 1M
// records { id: i64, ts: timestamp, key: string(8), price: f64 }, side by side in one run,
// interleaved (engine order rotates each repetition), median of several repetitions.
//
// Modes:
//   objects  decode materializes every record as a JS object
//   fields   decode computes sum(price) and max(id); Sluice reads the two fields in place, the
//            others must decode everything first (that is the point of a binary row format)
// Fairness: every engine encodes batches of the same number of records (Sluice fills 32 KiB batches;
// msgpack/JSON get arrays of the same average record count), msgpack reuses one Encoder and one
// Decoder, JSON includes the UTF-8 step (bytes are what travels), Sluice allocates a fresh 32 KiB
// buffer per batch (encodeBatches) rather than reusing managed-memory segments. Each decode is checked
// against checksums of the input so nothing can be optimized away.
//
// Run: make bench-serde   (node --import tsx bench/serde.ts [records] [repetitions])
// Writes bench/results/serde.json and the serde section of bench/RESULTS.md.

import { writeFileSync, readFileSync, existsSync, mkdirSync } from 'node:fs';
import { Encoder, Decoder } from '@msgpack/msgpack';
import { schema, t } from '../src/core/schema.ts';
import { BatchReader, encodeBatches } from '../src/core/rows.ts';

const RECORDS = Number(process.argv[2] ?? 1_000_000);
const REPS = Number(process.argv[3] ?? 7);

const s = schema({ id: t.i64(), ts: t.timestamp(), key: t.string(), price: t.f64() });
type Rec = { id: number; ts: number; key: string; price: number };

// ── data (seeded) ──────────────────────────────────────────────────────────────────────────
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}
const rand = rng(42);
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const records: Rec[] = new Array(RECORDS);
const T0 = Date.UTC(2025, 0, 1);
for (let i = 0; i < RECORDS; i++) {
  let key = '';
  for (let k = 0; k < 8; k++) key += LETTERS[Math.floor(rand() * LETTERS.length)];
  records[i] = { id: i * 7 + 1_000_000_000_000, ts: T0 + i * 13, key, price: Math.round(rand() * 1e7) / 100 };
}

interface Check {
  n: number;
  idSum: number;
  tsSum: number;
  keyLen: number;
  priceSum: number;
  idMax: number;
}
function newCheck(): Check {
  return { n: 0, idSum: 0, tsSum: 0, keyLen: 0, priceSum: 0, idMax: -Infinity };
}
/** Folds every field of every object into `c`: the consumer of a materialized batch. */
function foldCheck(c: Check, objs: Iterable<Rec>): Check {
  for (const o of objs) {
    c.n++;
    c.idSum += o.id % 1000;
    c.tsSum += o.ts % 1000;
    c.keyLen += o.key.length + o.key.charCodeAt(7);
    c.priceSum += o.price;
    if (o.id > c.idMax) c.idMax = o.id;
  }
  return c;
}
const checkOf = (objs: Iterable<Rec>) => foldCheck(newCheck(), objs);
const expected = checkOf(records);

function* flat(chunks: Rec[][]): Iterable<Rec> {
  for (const c of chunks) yield* c;
}

// ── engines ────────────────────────────────────────────────────────────────────────────────
interface Engine {
  name: 'sluice' | 'msgpack' | 'json';
  encode(): Uint8Array[];
  /** Materializes every batch and keeps all objects alive (1M live objects at the end). */
  decodeObjects(batches: Uint8Array[]): Rec[][];
  /** Materializes one batch at a time, hands it to the consumer, drops it — how a dataflow task uses it. */
  decodeObjectsStreaming(batches: Uint8Array[], consume: (objs: Rec[]) => void): void;
  decodeFields(batches: Uint8Array[]): { priceSum: number; idMax: number };
}

let chunkSize = 0; // records per batch, fixed by Sluice's 32 KiB batches
let chunks: Rec[][] = [];

const sluice: Engine = {
  name: 'sluice',
  encode: () => encodeBatches(s, records),
  decodeObjects(batches) {
    const out: Rec[][] = new Array(batches.length);
    const r = new BatchReader(s, batches[0]!);
    for (let b = 0; b < batches.length; b++) {
      if (b > 0) r.reset(batches[b]!);
      out[b] = r.readAll() as unknown as Rec[];
    }
    return out;
  },
  decodeObjectsStreaming(batches, consume) {
    const r = new BatchReader(s, batches[0]!);
    for (let b = 0; b < batches.length; b++) {
      if (b > 0) r.reset(batches[b]!);
      consume(r.readAll() as unknown as Rec[]);
    }
  },
  decodeFields(batches) {
    const r = new BatchReader(s, batches[0]!);
    const price = r.field('price');
    const id = r.field('id');
    let priceSum = 0;
    let idMax = -Infinity;
    for (let b = 0; b < batches.length; b++) {
      if (b > 0) r.reset(batches[b]!);
      for (let i = 0, n = r.rowCount; i < n; i++) {
        priceSum += r.getF64(i, price);
        const v = r.getI64(i, id);
        if (v > idMax) idMax = v;
      }
    }
    return { priceSum, idMax };
  },
};

const encoder = new Encoder();
const decoder = new Decoder();
const msgpack: Engine = {
  name: 'msgpack',
  encode: () => chunks.map((c) => encoder.encode(c)),
  decodeObjects: (batches) => batches.map((b) => decoder.decode(b) as Rec[]),
  decodeObjectsStreaming(batches, consume) {
    for (const b of batches) consume(decoder.decode(b) as Rec[]);
  },
  decodeFields(batches) {
    let priceSum = 0;
    let idMax = -Infinity;
    for (const b of batches) {
      const arr = decoder.decode(b) as Rec[];
      for (let i = 0; i < arr.length; i++) {
        const o = arr[i]!;
        priceSum += o.price;
        if (o.id > idMax) idMax = o.id;
      }
    }
    return { priceSum, idMax };
  },
};

const te = new TextEncoder();
const td = new TextDecoder();
const json: Engine = {
  name: 'json',
  encode: () => chunks.map((c) => te.encode(JSON.stringify(c))),
  decodeObjects: (batches) => batches.map((b) => JSON.parse(td.decode(b)) as Rec[]),
  decodeObjectsStreaming(batches, consume) {
    for (const b of batches) consume(JSON.parse(td.decode(b)) as Rec[]);
  },
  decodeFields(batches) {
    let priceSum = 0;
    let idMax = -Infinity;
    for (const b of batches) {
      const arr = JSON.parse(td.decode(b)) as Rec[];
      for (let i = 0; i < arr.length; i++) {
        const o = arr[i]!;
        priceSum += o.price;
        if (o.id > idMax) idMax = o.id;
      }
    }
    return { priceSum, idMax };
  },
};

const engines = [sluice, msgpack, json];

// Sluice decides the batch size; the others get the same number of records per batch.
{
  const b = sluice.encode();
  chunkSize = Math.round(RECORDS / b.length);
  for (let i = 0; i < RECORDS; i += chunkSize) chunks.push(records.slice(i, i + chunkSize));
}

function verify(name: string, mode: string, got: Partial<Check>): void {
  for (const k of Object.keys(got) as (keyof Check)[]) {
    const a = got[k]!;
    const e = expected[k];
    if (Math.abs(a - e) > Math.abs(e) * 1e-9) throw new Error(`${name}/${mode}: checksum ${k} = ${a}, expected ${e}`);
  }
}

const now = () => performance.now() / 1000;
const times: Record<string, { enc: number[]; obj: number[]; objStream: number[]; fld: number[]; bytes: number }> = {};
for (const e of engines) times[e.name] = { enc: [], obj: [], objStream: [], fld: [], bytes: 0 };

// warm-up on the real data (JIT), not timed
for (const e of engines) {
  const b = e.encode();
  verify(e.name, 'objects', checkOf(flat(e.decodeObjects(b))));
  verify(e.name, 'fields', e.decodeFields(b));
}

for (let rep = 0; rep < REPS; rep++) {
  for (let k = 0; k < engines.length; k++) {
    const e = engines[(rep + k) % engines.length]!;
    const T = times[e.name]!;
    let t0 = now();
    const batches = e.encode();
    T.enc.push(now() - t0);
    T.bytes = batches.reduce((a, b) => a + b.byteLength, 0);
    t0 = now();
    const objs = e.decodeObjects(batches);
    T.obj.push(now() - t0);
    verify(e.name, 'objects', checkOf(flat(objs)));
    objs.length = 0;
    const c = newCheck();
    t0 = now();
    e.decodeObjectsStreaming(batches, (batch) => foldCheck(c, batch));
    T.objStream.push(now() - t0);
    verify(e.name, 'objects', c);
    t0 = now();
    const f = e.decodeFields(batches);
    T.fld.push(now() - t0);
    verify(e.name, 'fields', f);
  }
}

const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[(a.length - 1) / 2]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2;
};

interface Entry {
  engine: Engine['name'];
  mode: 'objects' | 'fields';
  records: number;
  encodeSeconds: number;
  /** objects: materialize a batch, fold every field of every object into a checksum, drop it. */
  decodeSeconds: number;
  /** objects only: materialize everything and keep all objects alive (GC-bound, see RESULTS.md). */
  decodeRetainedSeconds?: number;
  bytes: number;
  batches: number;
  recordsPerBatch: number;
  repetitions: number;
}
const entries: Entry[] = [];
for (const mode of ['objects', 'fields'] as const) {
  for (const e of engines) {
    const T = times[e.name]!;
    entries.push({
      engine: e.name,
      mode,
      records: RECORDS,
      encodeSeconds: +median(T.enc).toFixed(4),
      decodeSeconds: +median(mode === 'objects' ? T.objStream : T.fld).toFixed(4),
      ...(mode === 'objects' ? { decodeRetainedSeconds: +median(T.obj).toFixed(4) } : {}),
      bytes: T.bytes,
      batches: chunks.length,
      recordsPerBatch: chunkSize,
      repetitions: REPS,
    });
  }
}

const cmd = `node --import tsx bench/serde.ts${process.argv[2] ? ' ' + process.argv.slice(2).join(' ') : ''}`;
const x = (a: number, b: number) => (a / b).toFixed(1) + '×';
const lines: string[] = [];
lines.push('<!-- serde:start -->');
lines.push('## Serialization (serde)');
lines.push('');
lines.push(`Command: \`make bench-serde\` (= \`${cmd}\`), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.`);
lines.push(
  `${RECORDS.toLocaleString('en')} records \`{ id: i64, ts: timestamp, key: string(8), price: f64 }\`, batches of ${chunkSize} records ` +
    `(Sluice: 32 KiB), median of ${REPS} interleaved repetitions. Speed-up = msgpack time / engine time (higher is better).`,
);
lines.push('');
lines.push('| mode | engine | encode s | decode s | enc+dec s | MB | encode vs msgpack | decode vs msgpack | enc+dec vs msgpack | decode, all kept alive s | enc+dec kept alive vs msgpack |');
lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const mode of ['objects', 'fields'] as const) {
  const m = entries.find((e) => e.engine === 'msgpack' && e.mode === mode)!;
  for (const e of entries.filter((e) => e.mode === mode)) {
    lines.push(
      `| ${mode} | ${e.engine} | ${e.encodeSeconds.toFixed(3)} | ${e.decodeSeconds.toFixed(3)} | ${(e.encodeSeconds + e.decodeSeconds).toFixed(3)} | ` +
        `${(e.bytes / 1e6).toFixed(1)} | ${x(m.encodeSeconds, e.encodeSeconds)} | ${x(m.decodeSeconds, e.decodeSeconds)} | ` +
        `${x(m.encodeSeconds + m.decodeSeconds, e.encodeSeconds + e.decodeSeconds)} | ` +
        (mode === 'objects'
          ? `${e.decodeRetainedSeconds!.toFixed(3)} | ${x(m.encodeSeconds + m.decodeRetainedSeconds!, e.encodeSeconds + e.decodeRetainedSeconds!)} |`
          : '– | – |'),
    );
  }
}
lines.push('');
lines.push(
  '`objects`: decode builds every record of a batch as a JS object, a consumer folds every field of every object into a ' +
    'checksum, and the batch is dropped — how a task consumes its input. \'Kept alive\' is the same decode keeping all ' +
    `${RECORDS.toLocaleString('en')} objects alive to the end: it is dominated by the garbage collector promoting them, for every engine alike. ` +
    '`fields`: decode computes sum(price) and max(id); Sluice reads the two ' +
    'fields in place from the validated batch, msgpack/JSON must decode whole records. JSON includes TextEncoder/TextDecoder. ' +
    'Every decode is verified against checksums of the input. Raw numbers: `bench/results/serde.json`.',
);
lines.push('<!-- serde:end -->');
const section = lines.join('\n');

if (!existsSync('bench/results')) mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/serde.json', JSON.stringify(entries, null, 2) + '\n');
const resultsPath = 'bench/RESULTS.md';
let md = existsSync(resultsPath) ? readFileSync(resultsPath, 'utf8') : '# Benchmark results\n\nEach section is written by its benchmark; peers are measured side by side in one run.\n\n';
const re = /<!-- serde:start -->[\s\S]*<!-- serde:end -->/;
md = re.test(md) ? md.replace(re, section) : md.trimEnd() + '\n\n' + section + '\n';
writeFileSync(resultsPath, md);
console.log(section);
