// Owns the streaming benchmark: throughput of pass-through and keyed-sum jobs at parallelism 1 and 2
// (on one thread, and on 2 worker threads) against a plain-JS loop and hand-rolled Node streams
// (measured side by side, interleaved, median), and end-to-end latency percentiles at a fixed 100k
// events/s with buffer timeouts 0, 1 and 100 ms across workers; writes bench/results/streaming.json
// and the streaming section of bench/RESULTS.md. The Sluice jobs are in bench/streaming-jobs.ts.
//
//   node --expose-gc --import tsx bench/streaming.ts [--events-pass 5000000] [--events-keyed 1000000] [--keys 10000]
//       [--reps 5] [--latency-seconds 4] [--latency-reps 3] [--batch-rows 1000000] [--batch-groups 10000] [--batch-build-rows 100000] [--batch-reps 3]
//       [--rate 100000] [--only throughput,latency,batch] [--no-write]
//   make bench-streaming
//
// Throughput. Events `{ k, v: 1, i }` from `fromGenerator(N, gen)` (k = one of --keys precomputed key
// strings, round robin). pass-through = generator → map (new object, v + 1) → sink; keyed-sum =
// generator → keyBy('k') → sum('v') → sink (Flink semantics: one updated record per input, a copy of
// the key's first record with the running sum). Every sink counts its records and sums v; the totals
// must equal the ones computed from the formulas (v = 1 makes the keyed sum independent of the order
// in which a key's records arrive, so it holds at any parallelism). Sluice runs as
// `throughputJob.run({ workers, environment: { parallelism } })`: parallelism 1 and 2 on the calling
// thread (workers: 1) and parallelism 2 on 2 workers. Its sinks note time and process CPU when they
// open and close (in whichever thread they run; bench/streaming-jobs.ts), so a run has two windows:
// "job" = last sink open → last sink close (the dataflow running once every thread is ready: the
// generators wait for every sink to open, see afterStart), "total" = the parent's run() call → its
// result (adds building the graph and, on workers, starting 2 worker threads that load the modules).
// Peers do the same work with the same generator/map functions, on the main thread: `js` is
// one loop (a Map of accumulators for keyed-sum), `node-streams` a Readable → Transform → Writable
// object-mode pipeline (one record per chunk), `node-streams-batched` the same moving arrays of 1,024
// records. CPU time is process.cpuUsage(): every thread of the process (workers and V8's GC helpers).
//
// Latency. `fromGenerator(Infinity, …, { ratePerSecond: 100_000 })` → keyBy('k') → reduce (running sum,
// keeping the newest record's fields) → sink: at parallelism 1 and 2 on one thread, and at parallelism 2 on
// 2 workers (the keyBy exchange between the source on worker w and the reduce of the other worker
// crosses threads for half of the records; the other half stays in the thread and passes batches
// directly) with bufferTimeoutMs 0, 1 and 100. Each event carries `t` = performance.timeOrigin +
// performance.now() taken when the generator creates it; the sink, in its worker, stores the same
// clock when it gets the event (the clocks of the threads agree within 1 µs: see
// bench/streaming-jobs.ts); both go to shared memory and the parent computes p50Ms/p99Ms of sink − t.
// The run lasts --latency-seconds from the moment every sink subtask has had an event (both workers
// running), then is cancelled; events created in its first 0.5 s are not counted. The generator creates an event only when its pacing lets it (bursts after each clock
// wake-up), so "from due" is also reported: sink time − the time the event was due by the rate,
// origin estimated per source subtask as the smallest (created − index / rate) — a lower bound, exact
// when some event was created the moment it was due.
//
// Batch. The batch bench's groupby and join (bench/batch/data.ts formulas; at its scale 0.1 by
// default: 1M rows into 10k keys; 1M probe rows × 100k build rows) through the DataStream batch API
// (bench/streaming-jobs.ts, runtimeMode 'batch': groupByJob = generator → withSchema →
// groupBy('k').aggregate({ s: sum('v'), c: count() }) → sink; joinJob = probe.join(build).where('k')
// .equalTo('k').with((l, r) => ({ pv, bv }), projection) → sink) at parallelism 1 and 2 on one thread
// and parallelism 2 on 2 workers, against native DuckDB (the batch bench's entry, bench/batch/duckdb.ts,
// in this process) with 1 and 2 threads. Not like for like: DuckDB's time starts with the rows loaded
// in a table, Sluice's jobs generate their rows as JS objects and encode them into binary rows, so
// "groupby-scan" (the group-by job without the group-by) times the generation of 1M rows alone. Every
// entry must produce the batch bench's check string. (sort and external sort: not here — the
// DataStream API has sortPartition, a sort within each partition, not a global sort at parallelism 2.)

import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JobCancelledError } from '../src/core/errors.ts';
import { expectedCheck, h, type BatchBenchOptions } from './batch/data.ts';
import { runDuckdb } from './batch/duckdb.ts';
import {
  absNow,
  groupByJob,
  joinJob,
  latencyJob,
  latencyStats,
  latencyViews,
  makeGen,
  mapFn,
  readThroughputStats,
  throughputJob,
  throughputStats,
  type Ev,
  type Workload,
} from './streaming-jobs.ts';

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
const BATCH_ROWS = Number(arg('batch-rows') ?? 1_000_000);
const BATCH_GROUPS = Number(arg('batch-groups') ?? 10_000);
const BATCH_BUILD = Number(arg('batch-build-rows') ?? 100_000);
const BATCH_REPS = Number(arg('batch-reps') ?? 3);
const ONLY = arg('only');
const wanted = (part: string): boolean => ONLY === undefined || ONLY.split(',').includes(part);
const WRITE = !process.argv.includes('--no-write');
const RATE = Number(arg('rate') ?? 100_000);
const WARMUP_S = 0.5;
const NODE_BATCH = 1024;

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ── the work, shared by every engine ─────────────────────────────────────────────────────────────
const gen = makeGen(KEYS);

/** The peers' sink fold: count and sum of v (what the check compares). */
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
  /** Threads that run the dataflow: 1 = the calling thread; 2 = two worker threads. */
  threads: number;
}

const eventsOf = (w: Workload): number => (w === 'pass-through' ? EVENTS_PASS : EVENTS_KEYED);
const cpuNow = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

interface Measured {
  /** The job's window (Sluice: first sink open → last sink close; peers: the whole run). */
  seconds: number;
  cpuSeconds: number;
  /** The whole run() call (Sluice on workers: with starting the workers). */
  totalSeconds: number;
  totalCpuSeconds: number;
  /** Sluice: backpressureMs of the source (summed over subtasks). */
  backpressureMs?: number;
  /** Sluice: ms between the first and the last sink open. */
  openSkewMs?: number;
}

async function runConfig(cfg: Config, n: number): Promise<Measured> {
  gc();
  const c = new Check();
  const cpu0 = cpuNow();
  const t0 = performance.now();
  let check: string;
  let job: { seconds: number; cpuSeconds: number } | undefined;
  let backpressureMs: number | undefined;
  let openSkewMs: number | undefined;
  if (cfg.engine === 'sluice') {
    const stats = throughputStats();
    const { result } = await throughputJob.run({
      workers: cfg.threads,
      environment: { parallelism: cfg.parallelism },
      params: { workload: cfg.workload, events: n, keys: KEYS, stats },
      jobName: `bench ${cfg.workload} p${cfg.parallelism} t${cfg.threads}`,
    });
    const r = readThroughputStats(stats, cfg.parallelism);
    check = r.check;
    job = r;
    openSkewMs = r.openSkewMs;
    backpressureMs = result.operators.find((o) => o.name.startsWith('Source'))?.backpressureMs ?? 0;
  } else {
    if (cfg.engine === 'js') runJs(cfg.workload, n, c);
    else await runNodeStreams(cfg.workload, n, cfg.engine === 'node-streams-batched', c);
    check = c.toString();
  }
  const totalSeconds = (performance.now() - t0) / 1000;
  const totalCpuSeconds = cpuNow() - cpu0;
  const want = expected(cfg.workload, n);
  if (check !== want) throw new Error(`${cfg.engine} ${cfg.workload} p${cfg.parallelism} t${cfg.threads}: check ${check} != expected ${want}`);
  return {
    seconds: job?.seconds ?? totalSeconds,
    cpuSeconds: job?.cpuSeconds ?? totalCpuSeconds,
    totalSeconds,
    totalCpuSeconds,
    ...(backpressureMs === undefined ? {} : { backpressureMs }),
    ...(openSkewMs === undefined ? {} : { openSkewMs }),
  };
}

interface ThroughputEntry {
  workload: Workload;
  engine: EngineName;
  parallelism: number;
  threads: number;
  events: number;
  /** Median job window (s). */
  seconds: number;
  eventsPerSecond: number;
  cpuSeconds: number;
  /** CPU seconds / wall seconds over the job window: the cores the process actually kept busy. */
  coresUsed: number;
  /** Events per CPU-second of the process over the job window (events/s per core actually used). */
  eventsPerCpuSecond: number;
  /** Median of the whole run() (with graph building and, on workers, their start). */
  totalSeconds: number;
  totalCpuSeconds: number;
  backpressureMs?: number;
  runs: { seconds: number; cpuSeconds: number; totalSeconds: number; openSkewMs?: number }[];
}

async function throughput(): Promise<ThroughputEntry[]> {
  const configs: Config[] = [];
  for (const workload of ['pass-through', 'keyed-sum'] as const) {
    configs.push({ workload, engine: 'sluice', parallelism: 1, threads: 1 });
    configs.push({ workload, engine: 'sluice', parallelism: 2, threads: 1 });
    configs.push({ workload, engine: 'sluice', parallelism: 2, threads: 2 });
    for (const engine of ['js', 'node-streams', 'node-streams-batched'] as const) configs.push({ workload, engine, parallelism: 1, threads: 1 });
  }
  // warm-up (JIT of the main thread) on a quarter of the events, not timed; worker threads start cold in every run
  for (const cfg of configs) await runConfig(cfg, Math.max(KEYS, Math.round(eventsOf(cfg.workload) / 4)));
  const runs: Measured[][] = configs.map(() => []);
  for (let r = 0; r < REPS; r++) {
    for (const workload of ['pass-through', 'keyed-sum'] as const) {
      const idxs = configs.map((c, i) => (c.workload === workload ? i : -1)).filter((i) => i >= 0);
      // interleaved: one run of every engine, then the next repetition, rotating the start
      for (let j = 0; j < idxs.length; j++) {
        const idx = idxs[(j + r) % idxs.length]!;
        const cfg = configs[idx]!;
        const n = eventsOf(workload);
        const res = await runConfig(cfg, n);
        runs[idx]!.push(res);
        console.log(
          `  rep ${r + 1} ${workload} ${cfg.engine} p${cfg.parallelism} threads ${cfg.threads}: job ${res.seconds.toFixed(3)} s (cpu ${res.cpuSeconds.toFixed(3)} s), ` +
            `${(n / res.seconds / 1e6).toFixed(2)} M events/s; total ${res.totalSeconds.toFixed(3)} s (cpu ${res.totalCpuSeconds.toFixed(3)} s)` +
            (res.backpressureMs === undefined ? '' : `; source backpressure ${res.backpressureMs.toFixed(0)} ms, sink opens ${res.openSkewMs!.toFixed(0)} ms apart`),
        );
      }
    }
  }
  return configs.map((cfg, i) => {
    const rs = runs[i]!;
    const seconds = median(rs.map((x) => x.seconds));
    const cpuSeconds = median(rs.map((x) => x.cpuSeconds));
    const events = eventsOf(cfg.workload);
    const bp = rs[0]?.backpressureMs === undefined ? undefined : median(rs.map((x) => x.backpressureMs!));
    return {
      ...cfg,
      events,
      seconds: +seconds.toFixed(4),
      eventsPerSecond: Math.round(events / seconds),
      cpuSeconds: +cpuSeconds.toFixed(4),
      coresUsed: +median(rs.map((x) => x.cpuSeconds / x.seconds)).toFixed(2),
      eventsPerCpuSecond: Math.round(events / cpuSeconds),
      totalSeconds: +median(rs.map((x) => x.totalSeconds)).toFixed(4),
      totalCpuSeconds: +median(rs.map((x) => x.totalCpuSeconds)).toFixed(4),
      ...(bp === undefined ? {} : { backpressureMs: Math.round(bp) }),
      runs: rs.map((x) => ({
        seconds: +x.seconds.toFixed(4),
        cpuSeconds: +x.cpuSeconds.toFixed(4),
        totalSeconds: +x.totalSeconds.toFixed(4),
        ...(x.openSkewMs === undefined ? {} : { openSkewMs: Math.round(x.openSkewMs) }),
      })),
    };
  });
}

// ── latency ──────────────────────────────────────────────────────────────────────────────────────
interface LatencyRun {
  events: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  p50FromDueMs: number;
  p99FromDueMs: number;
  /** Events whose source subtask ran on another thread than their sink subtask (NaN when none did). */
  crossedShare: number;
  p50CrossMs: number;
  p99CrossMs: number;
  /** Process CPU time ÷ wall time over the run (all threads). */
  coresUsed: number;
  /** Live metrics just before the cancel: share of the run the source was backpressured (0..1). */
  sourceBackpressure: number;
}

interface LatencyConfig {
  parallelism: number;
  threads: number;
  /** null: one thread, no channel between threads, the setting does not apply. */
  bufferTimeoutMs: number | null;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function latencyRun(cfg: LatencyConfig): Promise<LatencyRun> {
  gc();
  const cap = Math.ceil(RATE * (LAT_SECONDS + 3));
  const stats = latencyStats(cap);
  const v = latencyViews(stats, cap);
  const p = cfg.parallelism;
  const job = latencyJob.start({
    workers: cfg.threads,
    environment: { parallelism: p, ...(cfg.bufferTimeoutMs === null ? {} : { bufferTimeoutMs: cfg.bufferTimeoutMs }) },
    params: { rate: RATE, keys: KEYS, cap, stats },
    jobName: `latency p${p} threads ${cfg.threads} bufferTimeout ${cfg.bufferTimeoutMs}`,
  });
  const settled = job.result.then(
    () => {
      throw new Error('the unbounded latency job ended by itself');
    },
    (e: unknown) => {
      if (!(e instanceof JobCancelledError)) throw e;
    },
  );
  // the run starts once every sink subtask has had an event: every worker has loaded the modules and
  // runs its subtasks (one may start a second or more before the other, its events to the other piling up)
  const active = (): boolean => {
    for (let s = 0; s < p; s++) if (v.counts[s] === 0) return false;
    return true;
  };
  for (const deadline = performance.now() + 60_000; !active(); await sleep(5)) {
    if (performance.now() > deadline) throw new Error(`latency p${p}: not every sink had an event within 60 s`);
  }
  const started = absNow();
  const cpu0 = cpuNow();
  await sleep(LAT_SECONDS * 1000);
  const coresUsed = (cpuNow() - cpu0) / ((absNow() - started) / 1000);
  const sourceBackpressure = job.metrics().find((m) => m.name.startsWith('Source'))?.backpressure ?? NaN;
  job.cancel();
  await settled;
  // origin of each source subtask's schedule: event i of subtask s = i % p is due at origin_s + (i - s) / rate
  const origin = new Array<number>(p).fill(Infinity);
  for (let s = 0; s < p; s++) {
    const created = v.created(s);
    const index = v.index(s);
    for (let j = 0, n = v.counts[s]!; j < n; j++) {
      const src = index[j]! % p;
      const off = created[j]! - ((index[j]! - src) * 1000) / RATE;
      if (off < origin[src]!) origin[src] = off;
    }
  }
  const from = started + WARMUP_S * 1000;
  const lat: number[] = [];
  const cross: number[] = [];
  const due: number[] = [];
  const crosses = cfg.threads > 1;
  let first = Infinity;
  let last = -Infinity;
  for (let s = 0; s < p; s++) {
    const created = v.created(s);
    const index = v.index(s);
    const rec = v.received(s);
    for (let j = 0, n = v.counts[s]!; j < n; j++) {
      if (created[j]! < from) continue;
      const src = index[j]! % p;
      lat.push(rec[j]! - created[j]!);
      // source subtask src ran on worker src mod threads, sink subtask s on worker s mod threads
      if (crosses && src % cfg.threads !== s % cfg.threads) cross.push(rec[j]! - created[j]!);
      due.push(rec[j]! - (origin[src]! + ((index[j]! - src) * 1000) / RATE));
      if (rec[j]! < first) first = rec[j]!;
      if (rec[j]! > last) last = rec[j]!;
    }
  }
  const L = Float64Array.from(lat).sort();
  const D = Float64Array.from(due).sort();
  const C = Float64Array.from(cross).sort();
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
    crossedShare: r3(C.length / L.length),
    coresUsed: +coresUsed.toFixed(2),
    p50CrossMs: r3(quantile(C, 0.5)),
    p99CrossMs: r3(quantile(C, 0.99)),
    sourceBackpressure: r3(sourceBackpressure),
  };
}

interface LatencyEntry extends LatencyRun {
  workload: 'latency';
  parallelism: number;
  threads: number;
  bufferTimeoutMs: number | null;
  batchSize: number;
  ratePerSecond: number;
  achievedPerSecond: number;
  runs: { p50Ms: number; p99Ms: number; p50CrossMs: number; p99CrossMs: number; p99FromDueMs: number; achievedPerSecond: number }[];
}

const LAT_CONFIGS: LatencyConfig[] = [
  { parallelism: 1, threads: 1, bufferTimeoutMs: null },
  { parallelism: 2, threads: 1, bufferTimeoutMs: null },
  { parallelism: 2, threads: 2, bufferTimeoutMs: 0 },
  { parallelism: 2, threads: 2, bufferTimeoutMs: 1 },
  { parallelism: 2, threads: 2, bufferTimeoutMs: 100 },
];

async function latency(): Promise<LatencyEntry[]> {
  const configs = LAT_CONFIGS;
  const runs: LatencyRun[][] = configs.map(() => []);
  for (let r = 0; r < LAT_REPS; r++) {
    for (let j = 0; j < configs.length; j++) {
      const idx = (j + r) % configs.length;
      const cfg = configs[idx]!;
      const res = await latencyRun(cfg);
      runs[idx]!.push(res);
      console.log(
        `  rep ${r + 1} latency p${cfg.parallelism} threads ${cfg.threads} bufferTimeoutMs ${cfg.bufferTimeoutMs}: ${res.events} events in ${res.seconds} s, ` +
          `p50 ${res.p50Ms} ms, p99 ${res.p99Ms} ms (crossing threads: ${(res.crossedShare * 100).toFixed(0)}%, p50 ${res.p50CrossMs} p99 ${res.p99CrossMs} ms), p99.9 ${res.p999Ms} ms, max ${res.maxMs} ms; from due p50 ${res.p50FromDueMs} p99 ${res.p99FromDueMs} ms; ` +
          `source backpressure ${(res.sourceBackpressure * 100).toFixed(1)}%, cores used ${res.coresUsed}`,
      );
    }
  }
  return configs.map((cfg, i) => {
    const rs = runs[i]!;
    const m = (f: (x: LatencyRun) => number) => +median(rs.map(f)).toFixed(3);
    return {
      workload: 'latency',
      parallelism: cfg.parallelism,
      threads: cfg.threads,
      bufferTimeoutMs: cfg.bufferTimeoutMs,
      batchSize: 1024,
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
      crossedShare: m((x) => x.crossedShare),
      coresUsed: +median(rs.map((x) => x.coresUsed)).toFixed(2),
      p50CrossMs: m((x) => x.p50CrossMs),
      p99CrossMs: m((x) => x.p99CrossMs),
      sourceBackpressure: m((x) => x.sourceBackpressure),
      runs: rs.map((x) => ({ p50Ms: x.p50Ms, p99Ms: x.p99Ms, p50CrossMs: x.p50CrossMs, p99CrossMs: x.p99CrossMs, p99FromDueMs: x.p99FromDueMs, achievedPerSecond: Math.round(x.events / x.seconds) })),
    };
  });
}

// ── batch: the groupby and join of the batch bench on workers vs DuckDB ──────────────────────────────────
interface BatchConfig {
  workload: 'groupby' | 'groupby-scan' | 'join';
  engine: 'sluice' | 'duckdb';
  parallelism: number;
  threads: number;
}

interface BatchEntry extends BatchConfig {
  events: number;
  groups: number;
  /** Median seconds: Sluice's job window (last sink open → last sink close); DuckDB's timed query + check. */
  seconds: number;
  /** Sluice: median process CPU seconds over the job window. */
  cpuSeconds?: number;
  /** Sluice: median of the whole run() call. */
  totalSeconds?: number;
  runs: number[];
}

function scanCheck(rows: number): string {
  let sum = 0;
  let max = 0;
  for (let i = 0; i < rows; i++) {
    sum += i % 1000;
    const k = h(i) % BATCH_GROUPS;
    if (k > max) max = k;
  }
  return `${rows}|${sum}|${max}`;
}

async function batchRun(cfg: BatchConfig): Promise<{ seconds: number; cpuSeconds?: number; totalSeconds?: number; check: string }> {
  gc();
  if (cfg.engine === 'duckdb') {
    const o: BatchBenchOptions = {
      workload: cfg.workload === 'join' ? 'join' : 'groupby',
      rows: BATCH_ROWS,
      buildRows: BATCH_BUILD,
      groups: BATCH_GROUPS,
      budgetBytes: 0,
      threads: cfg.threads,
      tmpDir: tmpdir(),
    };
    return runDuckdb(BATCH_ROWS, o);
  }
  const stats = throughputStats();
  const t0 = performance.now();
  const run = { workers: cfg.threads, environment: { parallelism: cfg.parallelism, runtimeMode: 'batch' as const }, jobName: `bench ${cfg.workload} p${cfg.parallelism} t${cfg.threads}` };
  if (cfg.workload === 'join') await joinJob.run({ ...run, params: { rows: BATCH_ROWS, buildRows: BATCH_BUILD, stats } });
  else await groupByJob.run({ ...run, params: { rows: BATCH_ROWS, groups: BATCH_GROUPS, aggregate: cfg.workload === 'groupby', stats } });
  const totalSeconds = (performance.now() - t0) / 1000;
  const r = readThroughputStats(stats, cfg.parallelism);
  return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, totalSeconds, check: `${r.check}|${cfg.workload === 'join' ? r.sum2 : r.max}` };
}

async function batch(): Promise<BatchEntry[]> {
  const configs: BatchConfig[] = [
    { workload: 'groupby', engine: 'sluice', parallelism: 1, threads: 1 },
    { workload: 'groupby', engine: 'sluice', parallelism: 2, threads: 1 },
    { workload: 'groupby', engine: 'sluice', parallelism: 2, threads: 2 },
    { workload: 'groupby', engine: 'duckdb', parallelism: 1, threads: 1 },
    { workload: 'groupby', engine: 'duckdb', parallelism: 2, threads: 2 },
    { workload: 'groupby-scan', engine: 'sluice', parallelism: 1, threads: 1 },
    { workload: 'groupby-scan', engine: 'sluice', parallelism: 2, threads: 2 },
    { workload: 'join', engine: 'sluice', parallelism: 1, threads: 1 },
    { workload: 'join', engine: 'sluice', parallelism: 2, threads: 1 },
    { workload: 'join', engine: 'sluice', parallelism: 2, threads: 2 },
    { workload: 'join', engine: 'duckdb', parallelism: 1, threads: 1 },
    { workload: 'join', engine: 'duckdb', parallelism: 2, threads: 2 },
  ];
  const want = {
    groupby: expectedCheck({ workload: 'groupby', rows: BATCH_ROWS, buildRows: 0, groups: BATCH_GROUPS, budgetBytes: 0, threads: 1, tmpDir: '' }),
    'groupby-scan': scanCheck(BATCH_ROWS),
    join: expectedCheck({ workload: 'join', rows: BATCH_ROWS, buildRows: BATCH_BUILD, groups: 0, budgetBytes: 0, threads: 1, tmpDir: '' }),
  };
  const rs: { seconds: number; cpuSeconds?: number; totalSeconds?: number }[][] = configs.map(() => []);
  for (let r = -1; r < BATCH_REPS; r++) {
    // r = -1: one untimed warm-up run of each (the main thread's JIT, DuckDB's first allocations)
    for (let j = 0; j < configs.length; j++) {
      const idx = (j + Math.max(0, r)) % configs.length;
      const cfg = configs[idx]!;
      const res = await batchRun(cfg);
      if (res.check !== want[cfg.workload]) throw new Error(`${cfg.engine} ${cfg.workload} p${cfg.parallelism} t${cfg.threads}: check ${res.check} != expected ${want[cfg.workload]}`);
      if (r < 0) continue;
      rs[idx]!.push(res);
      console.log(
        `  rep ${r + 1} ${cfg.workload} ${cfg.engine} p${cfg.parallelism} threads ${cfg.threads}: ${res.seconds.toFixed(3)} s` +
          (res.cpuSeconds === undefined ? '' : ` (cpu ${res.cpuSeconds.toFixed(3)} s; with start ${res.totalSeconds!.toFixed(3)} s)`),
      );
    }
  }
  return configs.map((cfg, i) => {
    const x = rs[i]!;
    const sluice = cfg.engine === 'sluice';
    return {
      ...cfg,
      events: BATCH_ROWS,
      groups: BATCH_GROUPS,
      seconds: +median(x.map((y) => y.seconds)).toFixed(4),
      ...(sluice ? { cpuSeconds: +median(x.map((y) => y.cpuSeconds!)).toFixed(4), totalSeconds: +median(x.map((y) => y.totalSeconds!)).toFixed(4) } : {}),
      runs: x.map((y) => +y.seconds.toFixed(4)),
    };
  });
}

// ── run and report ───────────────────────────────────────────────────────────────────────────────
const loadBefore = loadavg();
const tp = wanted('throughput') ? await throughput() : [];
const lt = wanted('latency') ? await latency() : [];
const bt = wanted('batch') ? await batch() : [];
const loadAfter = loadavg();

const args = process.argv.slice(2).join(' ');
const cmd = `node --expose-gc --import tsx bench/streaming.ts${args ? ' ' + args : ''}`;
const fmtM = (x: number) => (x / 1e6).toFixed(2);
const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(1)).join(' / ');
const threadsOf = (t: number) => (t === 1 ? '1 (calling)' : `${t} workers`);
const lines: string[] = [];
lines.push('## Streaming: throughput, latency, batch on workers');
lines.push('');
lines.push(
  `Command: \`make -o node_modules/.installed -o deps bench-streaming${args ? ` ARGS='${args}'` : ''}\` (= \`${cmd}\`), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, ` +
    `2-core shared machine, load average (1/5/15 min) ${fmtLoad(loadBefore)} before and ${fmtLoad(loadAfter)} after the run.`,
);
if (tp.length > 0) {
  lines.push('');
  lines.push(
    `**Throughput**: generated events \`{ k, v, i }\` over ${KEYS.toLocaleString('en')} keys; pass-through = generator → map → sink, ` +
      'keyed-sum = generator → keyBy(k) → sum(v) → sink (one updated record per input). ' +
      `Median of ${REPS} interleaved repetitions. Sluice runs as \`throughputJob.run({ workers, environment: { parallelism } })\` (bench/streaming-jobs.ts): ` +
      '"threads" 1 = every subtask on the calling thread, 2 workers = subtask i on worker i. ' +
      '"job s" = last sink open → last sink close, measured by the sinks in their threads; "with start s" = the whole `run()` call ' +
      '(building the graph and, on workers, starting two worker threads that load the modules through tsx). ' +
      '"cores used" = process CPU time (all threads) ÷ wall time over the job window; "M events per CPU-s" = events per CPU-second of the process over it, ' +
      'the per-core figure and far less sensitive to other load on this shared machine than wall time. ' +
      '"vs js" = plain-JS loop events per CPU-s ÷ engine events per CPU-s (2.0× = half the loop\'s speed per core). ' +
      '"source bp ms" = backpressureMs of the source (time its tasks could not take input because an output was over its bound), summed over subtasks.',
  );
  lines.push('');
  lines.push('| workload | events | engine | parallelism | threads | job s | M events/s | cores used | M events per CPU-s | vs js | with start s | source bp ms |');
  lines.push('|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const e of tp) {
    const js = tp.find((x) => x.workload === e.workload && x.engine === 'js')!;
    lines.push(
      `| ${e.workload} | ${e.events.toLocaleString('en')} | ${e.engine} | ${e.parallelism} | ${threadsOf(e.threads)} | ${e.seconds.toFixed(3)} | ${fmtM(e.eventsPerSecond)} | ${e.coresUsed.toFixed(2)} | ` +
        `${fmtM(e.eventsPerCpuSecond)} | ${(js.eventsPerCpuSecond / e.eventsPerCpuSecond).toFixed(2)}× | ${e.totalSeconds.toFixed(3)} | ${e.backpressureMs ?? '–'} |`,
    );
  }
}
if (lt.length > 0) {
  lines.push('');
  lines.push(
    `**Latency** at ${RATE.toLocaleString('en')} events/s: \`fromGenerator(Infinity, …, { ratePerSecond: ${RATE} })\` → keyBy(k) → reduce (running sum) → sink, batchSize 1024 (default); ` +
      'parallelism 1 and 2 on the calling thread, and parallelism 2 on 2 workers, where the keyBy exchange sends about half of the records to the other worker through a credit-based network channel ' +
      '(the other half stays in its thread; channels within a thread pass batches at once and ignore the buffer timeout — hence "–" for one thread). ' +
      `${LAT_SECONDS} s per run from the moment every sink subtask has had an event (both workers running), then cancelled; events created in its first ${WARMUP_S} s are not counted; median over ${LAT_REPS} interleaved runs of each run's percentile. ` +
      'p50/p99 = the sink\'s time when it gets the event − the event\'s creation time in the generator, both `performance.timeOrigin + performance.now()` taken in the threads where they run ' +
      '(the threads\' clocks agree within 1 µs, measured) and shipped back through shared memory; ' +
      '"due→sink" = sink time − the time the event was due by the rate (adds the source\'s pacing and any backlog). ' +
      '"crossing" = only the events whose source subtask ran on the other worker than their sink (through the network channel; about half of them): ' +
      'the all-events p50 sits at the boundary between them and the events that stayed in their thread. ' +
      '"events/s reached" below 100,000 means the job could not keep up. "source bp" = share of the run the source was backpressured (live metrics before the cancel); "cores used" = process CPU time ÷ wall time over the run.',
  );
  lines.push('');
  lines.push('| parallelism | threads | bufferTimeoutMs | events/s reached | p50 ms | p99 ms | crossing: share | crossing p50 ms | crossing p99 ms | p99.9 ms | max ms | due→sink p50 ms | due→sink p99 ms | source bp | cores used |');
  lines.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const e of lt) {
    lines.push(
      `| ${e.parallelism} | ${threadsOf(e.threads)} | ${e.bufferTimeoutMs ?? '–'} | ${e.achievedPerSecond.toLocaleString('en')} | ${e.p50Ms.toFixed(3)} | ${e.p99Ms.toFixed(3)} | ` +
        (e.threads > 1 ? `${(e.crossedShare * 100).toFixed(0)}% | ${e.p50CrossMs.toFixed(3)} | ${e.p99CrossMs.toFixed(3)} | ` : '– | – | – | ') +
        `${e.p999Ms.toFixed(3)} | ${e.maxMs.toFixed(3)} | ${e.p50FromDueMs.toFixed(3)} | ${e.p99FromDueMs.toFixed(3)} | ${(e.sourceBackpressure * 100).toFixed(1)}% | ${e.coresUsed.toFixed(2)} |`,
    );
  }
}
if (bt.length > 0) {
  const duck2 = (w: BatchConfig['workload']) => bt.find((e) => e.workload === w && e.engine === 'duckdb' && e.threads === 2);
  lines.push('');
  lines.push(
    `**Batch: the batch bench's groupby and join** (groupby: ${BATCH_ROWS.toLocaleString('en')} rows → ${BATCH_GROUPS.toLocaleString('en')} keys, \`GROUP BY k: sum(v), count(*)\`; ` +
      `join: ${BATCH_ROWS.toLocaleString('en')} probe rows × ${BATCH_BUILD.toLocaleString('en')} build rows, every probe row matching once, \`count(*), sum(pv), sum(bv)\`; bench/batch/data.ts) ` +
      'through the DataStream batch API with runtimeMode \'batch\' (bench/streaming-jobs.ts): `fromGenerator(rows) → withSchema → groupBy(\'k\').aggregate({ s: sum(\'v\'), c: count() }) → sink` and ' +
      '`probe.join(build).where(\'k\').equalTo(\'k\').with((l, r) => ({ pv, bv }), { left: [\'pv\'], right: [\'bv\'] }) → sink` (the planner broadcasts the build side at parallelism 2), ' +
      'against native DuckDB (the batch bench\'s entry, in this process) with 1 and 2 threads. ' +
      `Median of ${BATCH_REPS} interleaved repetitions after one untimed warm-up of each. Sluice seconds = the job window (last sink open → last sink close); DuckDB = its timed query (rows already in a table) plus the check query. ` +
      '**Not like for like**: Sluice\'s jobs also generate their rows as JS objects and encode them into binary rows, and the join hands 1M joined records to its sink; "groupby-scan" is the group-by job without the group-by (generating 1M rows alone). ' +
      'Every entry produced the batch bench\'s check string. "vs DuckDB 2t" = seconds ÷ DuckDB 2-thread seconds (lower is better).',
  );
  lines.push('');
  lines.push('| workload | rows | engine | parallelism | threads | median s | CPU s | with start s | vs DuckDB 2t |');
  lines.push('|---|---:|---|---:|---|---:|---:|---:|---:|');
  for (const e of bt) {
    lines.push(
      `| ${e.workload} | ${e.events.toLocaleString('en')}${e.workload === 'join' ? ` × ${BATCH_BUILD.toLocaleString('en')}` : ''} | ${e.engine} | ${e.parallelism} | ${e.engine === 'duckdb' ? `${e.threads}` : threadsOf(e.threads)} | ${e.seconds.toFixed(3)} | ` +
        `${e.cpuSeconds?.toFixed(3) ?? '–'} | ${e.totalSeconds?.toFixed(3) ?? '–'} | ${duck2(e.workload) ? `${(e.seconds / duck2(e.workload)!.seconds).toFixed(1)}×` : '–'} |`,
    );
  }
}
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
        batchRows: BATCH_ROWS,
        batchGroups: BATCH_GROUPS,
        batchBuildRows: BATCH_BUILD,
        batchReps: BATCH_REPS,
        entries: [...tp, ...lt, ...bt],
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
