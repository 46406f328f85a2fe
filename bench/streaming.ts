// Owns the streaming benchmark: throughput of pass-through and keyed-sum jobs at parallelism 1 and 2
// against a plain-JS loop and hand-rolled Node streams (measured side by side, interleaved, median),
// and end-to-end latency percentiles at a fixed 100k events/s; writes bench/results/streaming.json
// and the streaming section of bench/RESULTS.md.
//
//   node --expose-gc --import tsx bench/streaming.ts [--events-pass 5000000] [--events-keyed 1000000] [--keys 10000]
//       [--reps 5] [--latency-seconds 4] [--latency-reps 3] [--only throughput|latency] [--no-write]
//   make bench-streaming
//
// Throughput. Events `{ k, v: 1, i }` from `fromGenerator(N, gen)` (k = one of --keys precomputed key
// strings, round robin). pass-through = generator → map (new object, v + 1) → sink; keyed-sum =
// generator → keyBy('k') → sum('v') → sink (Flink semantics: one updated record per input, a copy of
// the key's first record with the running sum). The sink folds every record into a checksum that must
// equal the one computed from the formulas (v = 1 makes the keyed checksum independent of the order
// in which a key's records arrive, so it holds at any parallelism). Peers do the same work with the
// same generator/map/sink functions: `js` is one loop (a Map of accumulators for keyed-sum),
// `node-streams` a Readable → Transform → Writable object-mode pipeline (one record per chunk), and
// `node-streams-batched` the same pipeline moving arrays of 1,024 records. Wall time covers building
// the job and running it to completion; CPU time (process.cpuUsage: every thread of the process, so
// V8's GC helpers count too) gives the cores actually used and events per CPU-second.
//
// Latency. `fromGenerator(Infinity, …, { ratePerSecond: 100_000 })` → keyBy('k') → reduce (running sum,
// keeping the newest record's fields) → sink, run for --latency-seconds, then cancelled; the first
// 0.5 s are warm-up and not counted. Each event carries `t = performance.now()` taken when the
// generator creates it; the sink records now − t (p50Ms/p99Ms). The generator creates an event only
// when its pacing lets it (bursts after each clock wake-up), so "from due" is also reported: now −
// the time the event was due by the rate, origin estimated per source subtask as the smallest
// (created − index / rate) — a lower bound, exact when some event was created the moment it was due.
// The executor has no buffer timeout yet (records move per scheduling round; see the notes in the
// RESULTS section), so entries carry `bufferTimeoutMs: null` and vary `batchSize` instead.

import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StreamEnvironment } from '../src/api/environment.ts';
import { JobCancelledError } from '../src/core/errors.ts';

const here = dirname(fileURLToPath(import.meta.url));

function arg(name: string): string | undefined {
  const a = process.argv;
  const i = a.indexOf(`--${name}`);
  if (i >= 0) return a[i + 1];
  return a.find((x) => x.startsWith(`--${name}=`))?.slice(name.length + 3);
}

const EVENTS_PASS = Number(arg('events-pass') ?? 5_000_000);
const EVENTS_KEYED = Number(arg('events-keyed') ?? 1_000_000);
const KEYS = Number(arg('keys') ?? 10_000);
const REPS = Number(arg('reps') ?? 5);
const LAT_SECONDS = Number(arg('latency-seconds') ?? 4);
const LAT_REPS = Number(arg('latency-reps') ?? 3);
const ONLY = arg('only');
const WRITE = !process.argv.includes('--no-write');
const RATE = 100_000;
const WARMUP_S = 0.5;
const LAT_BATCH_SIZES = [1, 64, 1024];
const PARALLELISMS = [1, 2];
const NODE_BATCH = 1024;

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ── the work, shared by every engine ─────────────────────────────────────────────────────────────
interface Ev {
  k: string;
  v: number;
  i: number;
}
const keyNames: string[] = Array.from({ length: KEYS }, (_, j) => `key-${j}`);
const gen = (i: number): Ev => ({ k: keyNames[i % KEYS]!, v: 1, i });
const mapFn = (e: Ev): Ev => ({ k: e.k, v: e.v + 1, i: e.i });

/** The sink's fold: count and sum of v (what the check compares). */
class Check {
  n = 0;
  sum = 0;
  add(e: Ev): void {
    this.n++;
    this.sum += e.v;
  }
  toString(): string {
    return `${this.n}|${this.sum}`;
  }
}

type Workload = 'pass-through' | 'keyed-sum';
type EngineName = 'sluice' | 'js' | 'node-streams' | 'node-streams-batched';

function expected(w: Workload, n: number): string {
  if (w === 'pass-through') return `${n}|${2 * n}`;
  // key j gets ceil/floor(n / KEYS) records; its running sums 1..n_j add up to n_j(n_j+1)/2
  let sum = 0;
  for (let j = 0; j < KEYS; j++) {
    const nj = Math.floor(n / KEYS) + (j < n % KEYS ? 1 : 0);
    sum += (nj * (nj + 1)) / 2;
  }
  return `${n}|${sum}`;
}

async function runSluice(w: Workload, n: number, parallelism: number, c: Check): Promise<void> {
  const env = StreamEnvironment.create({ parallelism });
  const src = env.fromGenerator(n, gen);
  const sink = (e: Ev): void => c.add(e);
  if (w === 'pass-through') src.map(mapFn).addSink(sink);
  else src.keyBy('k').sum('v').addSink(sink);
  await env.execute(`bench ${w} p${parallelism}`);
}

function runJs(w: Workload, n: number, c: Check): void {
  if (w === 'pass-through') {
    for (let i = 0; i < n; i++) c.add(mapFn(gen(i)));
    return;
  }
  // the same semantics as sum('v'): accumulator per key, emit a copy of the first record with the sum
  const accs = new Map<string, { base: Ev; v: number }>();
  for (let i = 0; i < n; i++) {
    const e = gen(i);
    let a = accs.get(e.k);
    if (a === undefined) accs.set(e.k, (a = { base: e, v: e.v }));
    else a.v += e.v;
    c.add({ ...a.base, v: a.v });
  }
}

function keyedSumStep(accs: Map<string, { base: Ev; v: number }>, e: Ev): Ev {
  let a = accs.get(e.k);
  if (a === undefined) accs.set(e.k, (a = { base: e, v: e.v }));
  else a.v += e.v;
  return { ...a.base, v: a.v };
}

async function runNodeStreams(w: Workload, n: number, batched: boolean, c: Check): Promise<void> {
  let i = 0;
  const source = new Readable({
    objectMode: true,
    read() {
      while (i < n) {
        let chunk: Ev | Ev[];
        if (batched) {
          const end = Math.min(n, i + NODE_BATCH);
          const b: Ev[] = new Array(end - i);
          for (let j = 0; i < end; i++, j++) b[j] = gen(i);
          chunk = b;
        } else chunk = gen(i++);
        if (!this.push(chunk)) return;
      }
      this.push(null);
    },
  });
  const accs = new Map<string, { base: Ev; v: number }>();
  const f = w === 'pass-through' ? mapFn : (e: Ev) => keyedSumStep(accs, e);
  const op = new Transform({
    objectMode: true,
    transform(chunk: Ev | Ev[], _enc, cb) {
      if (!batched) return cb(null, f(chunk as Ev));
      const b = chunk as Ev[];
      const o: Ev[] = new Array(b.length);
      for (let j = 0; j < b.length; j++) o[j] = f(b[j]!);
      cb(null, o);
    },
  });
  const sink = new Writable({
    objectMode: true,
    write(chunk: Ev | Ev[], _enc, cb) {
      if (!batched) c.add(chunk as Ev);
      else for (const e of chunk as Ev[]) c.add(e);
      cb();
    },
  });
  await pipeline(source, op, sink);
}

interface Config {
  workload: Workload;
  engine: EngineName;
  parallelism: number;
}

const eventsOf = (w: Workload): number => (w === 'pass-through' ? EVENTS_PASS : EVENTS_KEYED);

async function runConfig(cfg: Config, n: number): Promise<{ seconds: number; cpuSeconds: number }> {
  gc();
  const c = new Check();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (cfg.engine === 'sluice') await runSluice(cfg.workload, n, cfg.parallelism, c);
  else if (cfg.engine === 'js') runJs(cfg.workload, n, c);
  else await runNodeStreams(cfg.workload, n, cfg.engine === 'node-streams-batched', c);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const want = expected(cfg.workload, n);
  if (c.toString() !== want) throw new Error(`${cfg.engine} ${cfg.workload} p${cfg.parallelism}: check ${c} != expected ${want}`);
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

interface ThroughputEntry {
  workload: Workload;
  engine: EngineName;
  parallelism: number;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  cpuSeconds: number;
  /** CPU seconds / wall seconds over the run: the cores the process actually kept busy. */
  coresUsed: number;
  /** Events per CPU-second of the process (events/s per core actually used). */
  eventsPerCpuSecond: number;
  runs: number[];
}

async function throughput(): Promise<ThroughputEntry[]> {
  const configs: Config[] = [];
  for (const workload of ['pass-through', 'keyed-sum'] as const) {
    for (const p of PARALLELISMS) configs.push({ workload, engine: 'sluice', parallelism: p });
    for (const engine of ['js', 'node-streams', 'node-streams-batched'] as const) configs.push({ workload, engine, parallelism: 1 });
  }
  // warm-up (JIT) on a quarter of the events, not timed
  for (const cfg of configs) await runConfig(cfg, Math.max(KEYS, Math.round(eventsOf(cfg.workload) / 4)));
  const runs = configs.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
  for (let r = 0; r < REPS; r++) {
    for (const workload of ['pass-through', 'keyed-sum'] as const) {
      const idxs = configs.map((c, i) => (c.workload === workload ? i : -1)).filter((i) => i >= 0);
      // interleaved: one run of every engine, then the next repetition, rotating the start
      for (let j = 0; j < idxs.length; j++) {
        const idx = idxs[(j + r) % idxs.length]!;
        const cfg = configs[idx]!;
        const n = eventsOf(workload);
        const res = await runConfig(cfg, n);
        runs[idx]!.wall.push(res.seconds);
        runs[idx]!.cpu.push(res.cpuSeconds);
        console.log(`  rep ${r + 1} ${workload} ${cfg.engine} p${cfg.parallelism}: ${res.seconds.toFixed(3)} s, ${(n / res.seconds / 1e6).toFixed(2)} M events/s, cpu ${res.cpuSeconds.toFixed(3)} s`);
      }
    }
  }
  return configs.map((cfg, i) => {
    const seconds = median(runs[i]!.wall);
    const cpuSeconds = median(runs[i]!.cpu);
    const events = eventsOf(cfg.workload);
    return {
      ...cfg,
      events,
      seconds: +seconds.toFixed(4),
      eventsPerSecond: Math.round(events / seconds),
      cpuSeconds: +cpuSeconds.toFixed(4),
      coresUsed: +median(runs[i]!.cpu.map((c, k) => c / runs[i]!.wall[k]!)).toFixed(2),
      eventsPerCpuSecond: Math.round(events / cpuSeconds),
      runs: runs[i]!.wall.map((x) => +x.toFixed(4)),
    };
  });
}

// ── latency ──────────────────────────────────────────────────────────────────────────────────────
interface LatEv extends Ev {
  t: number;
}

interface LatencyRun {
  events: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  p50FromDueMs: number;
  p99FromDueMs: number;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function latencyRun(parallelism: number, batchSize: number): Promise<LatencyRun> {
  gc();
  const cap = Math.ceil(RATE * (LAT_SECONDS + 2));
  const created = new Float64Array(cap);
  const received = new Float64Array(cap);
  const index = new Float64Array(cap);
  let n = 0;
  const env = StreamEnvironment.create({ parallelism, batchSize });
  env
    .fromGenerator(Infinity, (i): LatEv => ({ k: keyNames[i % KEYS]!, v: 1, i, t: performance.now() }), { ratePerSecond: RATE })
    .keyBy('k')
    .reduce((a, b) => ({ k: b.k, v: a.v + b.v, i: b.i, t: b.t }))
    .addSink((e: LatEv) => {
      if (n < cap) {
        received[n] = performance.now();
        created[n] = e.t;
        index[n] = e.i;
        n++;
      }
    });
  const job = env.executeAsync(`latency p${parallelism} batch ${batchSize}`);
  await sleep(LAT_SECONDS * 1000);
  job.cancel();
  await job.result.then(
    () => {
      throw new Error('the unbounded latency job ended by itself');
    },
    (e: unknown) => {
      if (!(e instanceof JobCancelledError)) throw e;
    },
  );
  // origin of each source subtask's schedule: event i of subtask s = i % p is due at origin_s + (i - s) / rate
  const origin = new Array<number>(parallelism).fill(Infinity);
  let t0 = Infinity;
  for (let j = 0; j < n; j++) {
    const s = index[j]! % parallelism;
    const off = created[j]! - ((index[j]! - s) * 1000) / RATE;
    if (off < origin[s]!) origin[s] = off;
    if (created[j]! < t0) t0 = created[j]!;
  }
  const from = t0 + WARMUP_S * 1000;
  const lat: number[] = [];
  const due: number[] = [];
  let first = Infinity;
  let last = -Infinity;
  for (let j = 0; j < n; j++) {
    if (created[j]! < from) continue;
    const s = index[j]! % parallelism;
    lat.push(received[j]! - created[j]!);
    due.push(received[j]! - (origin[s]! + ((index[j]! - s) * 1000) / RATE));
    if (received[j]! < first) first = received[j]!;
    if (received[j]! > last) last = received[j]!;
  }
  const L = Float64Array.from(lat).sort();
  const D = Float64Array.from(due).sort();
  const r3 = (x: number) => +x.toFixed(3);
  return {
    events: L.length,
    seconds: r3((last - first) / 1000),
    p50Ms: r3(quantile(L, 0.5)),
    p99Ms: r3(quantile(L, 0.99)),
    p999Ms: r3(quantile(L, 0.999)),
    maxMs: r3(L[L.length - 1] ?? NaN),
    p50FromDueMs: r3(quantile(D, 0.5)),
    p99FromDueMs: r3(quantile(D, 0.99)),
  };
}

interface LatencyEntry extends LatencyRun {
  workload: 'latency';
  parallelism: number;
  bufferTimeoutMs: number | null;
  batchSize: number;
  ratePerSecond: number;
  achievedPerSecond: number;
  runs: { p50Ms: number; p99Ms: number; p99FromDueMs: number }[];
}

async function latency(): Promise<LatencyEntry[]> {
  const configs = PARALLELISMS.flatMap((parallelism) => LAT_BATCH_SIZES.map((batchSize) => ({ parallelism, batchSize })));
  const runs: LatencyRun[][] = configs.map(() => []);
  for (let r = 0; r < LAT_REPS; r++) {
    for (let j = 0; j < configs.length; j++) {
      const idx = (j + r) % configs.length;
      const cfg = configs[idx]!;
      const res = await latencyRun(cfg.parallelism, cfg.batchSize);
      runs[idx]!.push(res);
      console.log(
        `  rep ${r + 1} latency p${cfg.parallelism} batchSize ${cfg.batchSize}: ${res.events} events in ${res.seconds} s, p50 ${res.p50Ms} ms, p99 ${res.p99Ms} ms, p99.9 ${res.p999Ms} ms, max ${res.maxMs} ms; from due p50 ${res.p50FromDueMs} p99 ${res.p99FromDueMs} ms`,
      );
    }
  }
  return configs.map((cfg, i) => {
    const rs = runs[i]!;
    const m = (f: (x: LatencyRun) => number) => +median(rs.map(f)).toFixed(3);
    return {
      workload: 'latency',
      parallelism: cfg.parallelism,
      bufferTimeoutMs: null,
      batchSize: cfg.batchSize,
      ratePerSecond: RATE,
      events: Math.round(median(rs.map((x) => x.events))),
      seconds: m((x) => x.seconds),
      achievedPerSecond: Math.round(median(rs.map((x) => x.events / x.seconds))),
      p50Ms: m((x) => x.p50Ms),
      p99Ms: m((x) => x.p99Ms),
      p999Ms: m((x) => x.p999Ms),
      maxMs: m((x) => x.maxMs),
      p50FromDueMs: m((x) => x.p50FromDueMs),
      p99FromDueMs: m((x) => x.p99FromDueMs),
      runs: rs.map((x) => ({ p50Ms: x.p50Ms, p99Ms: x.p99Ms, p99FromDueMs: x.p99FromDueMs })),
    };
  });
}

// ── run and report ───────────────────────────────────────────────────────────────────────────────
const loadBefore = loadavg();
const tp = ONLY === 'latency' ? [] : await throughput();
const lt = ONLY === 'throughput' ? [] : await latency();
const loadAfter = loadavg();

// Whether a buffer timeout reached the API/executor since this bench was written (then extend the latency part).
const bufferTimeoutWired = ['../src/api/environment.ts', '../src/runtime/executor.ts'].some((f) => /bufferTimeout/.test(readFileSync(join(here, f), 'utf8')));

const args = process.argv.slice(2).join(' ');
const cmd = `node --expose-gc --import tsx bench/streaming.ts${args ? ' ' + args : ''}`;
const fmtM = (x: number) => (x / 1e6).toFixed(2);
const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(1)).join(' / ');
const lines: string[] = [];
lines.push('## Streaming: throughput and latency');
lines.push('');
lines.push(
  `Command: \`make bench-streaming\` (= \`${cmd}\`), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, ` +
    `2-core shared machine, load average (1/5/15 min) ${fmtLoad(loadBefore)} before and ${fmtLoad(loadAfter)} after the run.`,
);
if (tp.length > 0) {
  lines.push('');
  lines.push(
    `**Throughput**: generated events \`{ k, v, i }\` over ${KEYS.toLocaleString('en')} keys; pass-through = generator → map → sink, ` +
      'keyed-sum = generator → keyBy(k) → sum(v) → sink (one updated record per input). ' +
      `Median of ${REPS} interleaved repetitions. Wall time from building the job to its end; "cores used" = process CPU time ÷ wall time ` +
      '(below 1: the process waited — for the CPU on this shared machine, or idle in the executor); ' +
      '"M events per CPU-s" = events per CPU-second of the process, the per-core figure, far less sensitive to other load on the machine than wall time. ' +
      '"vs js" = plain-JS loop events per CPU-s ÷ engine events per CPU-s (2.0× = half the loop\'s speed per core).',
  );
  lines.push('');
  lines.push('| workload | events | engine | parallelism | median s | M events/s | cores used | M events per CPU-s | vs js |');
  lines.push('|---|---:|---|---:|---:|---:|---:|---:|---:|');
  for (const e of tp) {
    const js = tp.find((x) => x.workload === e.workload && x.engine === 'js')!;
    lines.push(
      `| ${e.workload} | ${e.events.toLocaleString('en')} | ${e.engine} | ${e.parallelism} | ${e.seconds.toFixed(3)} | ${fmtM(e.eventsPerSecond)} | ${e.coresUsed.toFixed(2)} | ` +
        `${fmtM(e.eventsPerCpuSecond)} | ${(js.eventsPerCpuSecond / e.eventsPerCpuSecond).toFixed(2)}× |`,
    );
  }
}
if (lt.length > 0) {
  lines.push('');
  lines.push(
    `**Latency** at ${RATE.toLocaleString('en')} events/s: \`fromGenerator(Infinity, …, { ratePerSecond: ${RATE} })\` → keyBy(k) → reduce (running sum) → sink, ` +
      `${LAT_SECONDS} s per run of which the first ${WARMUP_S} s are not counted, then cancelled; median over ${LAT_REPS} interleaved runs of each run's percentile. ` +
      'p50/p99 = sink time − the event\'s creation time (`performance.now()` in the generator function); ' +
      '"due→sink" = sink time − the time the event was due by the rate (adds the source\'s pacing and any backlog). ' +
      '"events/s reached" below 100,000 means the job could not keep up and the backlog grew for the whole run.',
  );
  lines.push('');
  lines.push('| parallelism | bufferTimeoutMs | batchSize | events/s reached | p50 ms | p99 ms | p99.9 ms | max ms | due→sink p50 ms | due→sink p99 ms |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const e of lt) {
    lines.push(
      `| ${e.parallelism} | ${e.bufferTimeoutMs ?? 'null'} | ${e.batchSize} | ${e.achievedPerSecond.toLocaleString('en')} | ${e.p50Ms.toFixed(3)} | ${e.p99Ms.toFixed(3)} | ` +
        `${e.p999Ms.toFixed(3)} | ${e.maxMs.toFixed(3)} | ${e.p50FromDueMs.toFixed(3)} | ${e.p99FromDueMs.toFixed(3)} |`,
    );
  }
}
lines.push('');
lines.push('What these numbers are not:');
lines.push('');
lines.push(
  '- **One core.** The executor is single-threaded today: every subtask of a job runs on the calling thread, in scheduling rounds ' +
    '(src/runtime/executor.ts). Parallelism 2 is two subtasks interleaved on one core: it adds no CPU and its "cores used" stays at or below 1; ' +
    'a difference between the p1 and p2 rows comes from the work per subtask (e.g. each keyed subtask sees half the keys), not from running in parallel. A worker-thread executor is being built; until it lands, events/s per core = the "per CPU-s" column and there is no scaling to report. ' +
    'The plain-JS and Node-streams peers are single-threaded as well (parallelism 1).',
);
lines.push(
  bufferTimeoutWired
    ? '- **Buffer timeout.** A `bufferTimeout` setting now appears in the API or executor, but this benchmark does not use it yet: ' +
        '`bufferTimeoutMs` is null and the latency rows vary `batchSize` instead. Extend bench/streaming.ts to measure 0, 1 and 100 ms.'
    : '- **Buffer timeout.** The executor has no buffer timeout: a record writer ships what it buffered for a channel at the end of every task step ' +
        '(or as soon as `batchSize` records are buffered), so records never wait for a timer. No setting of today\'s executor behaves like a 1 ms or 100 ms timeout, ' +
        'so `bufferTimeoutMs` is null and the rows vary `batchSize` (records per source poll and per batch between tasks), the closest existing knob. ' +
        'The 0 / 1 / 100 ms dimension awaits the network layer (src/runtime/network/output-flusher.ts, not wired into the executor when this ran).',
);
lines.push(
  '- **Batch workloads at parallelism 2 vs DuckDB with 2 threads: not done.** bench/batch.ts runs Sluice\'s batch operators as one-threaded calls ' +
    '(its Sluice entries have threads = 1 and no flag for more), and a parallelism-2 Sluice job would still run on one thread here. ' +
    'DuckDB\'s 1- and 2-thread figures are in the batch section.',
);
lines.push('');
lines.push('<!-- streaming-notes -->');
lines.push('');
lines.push('Raw numbers: `bench/results/streaming.json`.');
let section = lines.join('\n');
console.log('\n' + section);

if (WRITE) {
  if (!existsSync(join(here, 'results'))) mkdirSync(join(here, 'results'), { recursive: true });
  const json = join(here, 'results', 'streaming.json');
  writeFileSync(
    json,
    JSON.stringify(
      {
        command: cmd,
        node: process.version,
        date: new Date().toISOString(),
        loadAverageBefore: loadBefore,
        loadAverageAfter: loadAfter,
        keys: KEYS,
        reps: REPS,
        latencySeconds: LAT_SECONDS,
        latencyWarmupSeconds: WARMUP_S,
        latencyReps: LAT_REPS,
        entries: [...tp, ...lt],
      },
      null,
      2,
    ) + '\n',
  );
  const md = join(here, 'RESULTS.md');
  const text = readFileSync(md, 'utf8');
  const re = /<!-- streaming:start -->[\s\S]*?<!-- streaming:end -->/;
  // hand-written analysis between the notes marker and "Raw numbers" survives a rerun
  const notes = re.exec(text)?.[0].match(/<!-- streaming-notes -->\n([\s\S]*?)\nRaw numbers:/)?.[1];
  if (notes !== undefined) section = section.replace('<!-- streaming-notes -->\n\n', `<!-- streaming-notes -->\n${notes}\n`);
  const block = `<!-- streaming:start -->\n${section}\n<!-- streaming:end -->`;
  writeFileSync(md, re.test(text) ? text.replace(re, () => block) : `${text.trimEnd()}\n\n${block}\n`);
  console.log(`\nwrote ${json} and the streaming section of ${md}`);
}
