// Owns the Sluice jobs of the streaming benchmark (bench/streaming.ts), defined with defineJob in a
// module of their own so that worker threads can import and rebuild them. Their sinks run where their
// subtasks run (in a worker), so they measure there and write their figures into a SharedArrayBuffer
// passed in the params (a structured clone keeps it shared between the parent and every worker): the
// parent reads it once the job has finished or been cancelled. Nothing is added to the dataflow.
//
// Clock: `performance.timeOrigin + performance.now()` (ms since the epoch, monotonic within a thread).
// On Node 20 every worker reports the process's timeOrigin, and a ping-pong over shared memory
// between the main thread and a worker measured the two clocks within 1 µs of each other, so a time
// taken in a source subtask on one worker and one taken in a sink subtask on another compare directly.

import { count, defineJob, schema, sum, t } from '../src/index.ts';
import { h } from './batch/data.ts';

/** The clock shared by every thread of the process (see the header). */
export const absNow = (): number => performance.timeOrigin + performance.now();

export interface Ev {
  k: string;
  v: number;
  i: number;
}

/** The benchmark's generated record i over `keys` precomputed key strings, round robin. */
export function makeGen(keys: number): (i: number) => Ev {
  const keyNames: string[] = Array.from({ length: keys }, (_, j) => `key-${j}`);
  return function gen(i: number): Ev {
    return { k: keyNames[i % keys]!, v: 1, i };
  };
}

export function mapFn(e: Ev): Ev {
  return { k: e.k, v: e.v + 1, i: e.i };
}

export type Workload = 'pass-through' | 'keyed-sum';

/** Most sink subtasks a stats buffer has room for. */
export const MAX_SUBTASKS = 8;
/** Float64 slots per sink subtask in a stats buffer: n, sum, open time, open CPU µs, close time, close CPU µs, max (or a second sum). */
const SLOTS = 7;

/** A stats buffer of a throughput or group-by run. */
export function throughputStats(): SharedArrayBuffer {
  // the slots, then an Int32 count of the sink subtasks that have opened (the start barrier)
  return new SharedArrayBuffer(MAX_SUBTASKS * SLOTS * 8 + 8);
}

/**
 * What the sinks of a throughput run wrote: the check string and the job's window, from the last sink
 * open (every thread has loaded the modules and built its tasks; the sources wait for it: see
 * afterStart) to the last sink close. Starting at the first open would count the other worker's
 * module loading (`openSkewMs` tells how far apart the opens were).
 */
export function readThroughputStats(buf: SharedArrayBuffer, parallelism: number): { check: string; max: number; sum2: number; seconds: number; cpuSeconds: number; openSkewMs: number } {
  const f = new Float64Array(buf);
  let n = 0;
  let sum = 0;
  let firstOpen = Infinity;
  let open = -Infinity;
  let openCpu = 0;
  let close = -Infinity;
  let closeCpu = 0;
  for (let s = 0; s < parallelism; s++) {
    const b = s * SLOTS;
    n += f[b]!;
    sum += f[b + 1]!;
    firstOpen = Math.min(firstOpen, f[b + 2]!);
    if (f[b + 2]! > open) [open, openCpu] = [f[b + 2]!, f[b + 3]!];
    if (f[b + 4]! > close) [close, closeCpu] = [f[b + 4]!, f[b + 5]!];
  }
  let max = 0;
  let sum2 = 0;
  for (let s = 0; s < parallelism; s++) {
    max = Math.max(max, f[s * SLOTS + 6]!);
    sum2 += f[s * SLOTS + 6]!;
  }
  return { check: `${n}|${sum}`, max, sum2, seconds: (close - open) / 1000, cpuSeconds: (closeCpu - openCpu) / 1e6, openSkewMs: open - firstOpen };
}

const cpuMicros = (): number => {
  const c = process.cpuUsage(); // the whole process: every thread
  return c.user + c.system;
};

/**
 * A sink that counts its records, sums `sumOf(record)` and keeps the largest `maxOf(record)` (or,
 * with `second: 'sum'`, its sum) per subtask, and notes the time and the process's CPU time when it
 * opens and closes, into `stats`.
 */
function statsSink<T>(stats: SharedArrayBuffer, sumOf: (r: T) => number, maxOf: (r: T) => number, second: 'max' | 'sum' = 'max') {
  const f = new Float64Array(stats);
  const n = new Array<number>(MAX_SUBTASKS).fill(0);
  const sum = new Array<number>(MAX_SUBTASKS).fill(0);
  const max = new Array<number>(MAX_SUBTASKS).fill(0);
  return {
    open(ctx: { subtaskIndex: number }) {
      const b = ctx.subtaskIndex * SLOTS;
      f[b + 2] = absNow();
      f[b + 3] = cpuMicros();
      const opened = new Int32Array(stats, MAX_SUBTASKS * SLOTS * 8, 1);
      Atomics.add(opened, 0, 1);
      Atomics.notify(opened, 0);
    },
    invoke(r: T, ctx: { subtaskIndex: number }) {
      const s = ctx.subtaskIndex;
      n[s] = n[s]! + 1;
      sum[s] = sum[s]! + sumOf(r);
      const m = maxOf(r);
      if (second === 'sum') max[s] = max[s]! + m;
      else if (m > max[s]!) max[s] = m;
    },
    close(ctx: { subtaskIndex: number }) {
      const s = ctx.subtaskIndex;
      const b = s * SLOTS;
      f[b] = n[s]!;
      f[b + 1] = sum[s]!;
      f[b + 6] = max[s]!;
      f[b + 4] = absNow();
      f[b + 5] = cpuMicros();
    },
  };
}

/**
 * `gen` behind a start barrier: the first call in a thread waits (Atomics.wait, blocking the thread)
 * until all `parallelism` sink subtasks have opened. On workers one worker is often ready hundreds of
 * ms before the other (module loading); without the barrier a job with no exchange between them
 * (pass-through) would do the first worker's whole share before the other's sinks open, outside the
 * measured window. On one thread every sink opens before any source is polled, so it never waits.
 */
function afterStart<T>(stats: SharedArrayBuffer, parallelism: number, gen: (i: number) => T): (i: number) => T {
  let started = false;
  const opened = new Int32Array(stats, MAX_SUBTASKS * SLOTS * 8, 1);
  const wrapped = (i: number): T => {
    if (!started) {
      const deadline = Date.now() + 60_000;
      for (let n = Atomics.load(opened, 0); n < parallelism; n = Atomics.load(opened, 0)) {
        if (Date.now() > deadline) throw new Error(`bench: only ${n} of ${parallelism} sink subtasks opened within 60 s`);
        Atomics.wait(opened, 0, n, 50);
      }
      started = true;
    }
    return gen(i);
  };
  // the operator's name in the plan comes from the function's name
  Object.defineProperty(wrapped, 'name', { value: gen.name });
  return wrapped;
}

export interface ThroughputParams {
  workload: Workload;
  events: number;
  keys: number;
  stats: SharedArrayBuffer;
}

/**
 * pass-through = generator → map → sink; keyed-sum = generator → keyBy('k') → sum('v') → sink. Each
 * sink subtask counts its records and sums v (the check), and notes the time and the process's CPU
 * time when it opens and closes (see readThroughputStats for the window).
 */
export const throughputJob = defineJob(
  import.meta.url,
  (env, p: ThroughputParams) => {
    const src = env.fromGenerator(p.events, afterStart(p.stats, env.getParallelism(), makeGen(p.keys)));
    const stream = p.workload === 'pass-through' ? src.map(mapFn) : src.keyBy('k').sum('v');
    stream.addSink(statsSink(p.stats, (e: Ev) => e.v, () => 0));
  },
  { name: 'bench throughput' },
);

export interface GroupByParams {
  rows: number;
  groups: number;
  /** false: only generate the rows and give them the schema (the cost the group-by adds to is the rest). */
  aggregate: boolean;
  stats: SharedArrayBuffer;
}

/**
 * The batch bench's groupby (bench/batch/data.ts: g(k = h(i) mod groups, v = i mod 1000), GROUP BY k:
 * sum(v) AS s, count(*) AS c) through the DataStream batch API, run with runtimeMode 'batch':
 * generator → withSchema → groupBy('k').aggregate(...) → sink; the sinks compute the batch bench's
 * check (groups | sum of s | max of c). Without `aggregate`: generator → withSchema → sink
 * (rows | sum of v | max of k), the generation alone.
 */
export const groupByJob = defineJob(
  import.meta.url,
  (env, p: GroupByParams) => {
    const rows = env
      .fromGenerator(
        p.rows,
        afterStart(p.stats, env.getParallelism(), function row(i: number) {
          return { k: h(i) % p.groups, v: i % 1000 };
        }),
      )
      .withSchema(schema({ k: t.i64(), v: t.i64() }));
    if (p.aggregate) {
      rows
        .groupBy('k')
        .aggregate({ s: sum('v'), c: count() })
        .addSink(statsSink(p.stats, (r: { s: number; c: number }) => Number(r.s), (r) => r.c));
    } else {
      rows.addSink(statsSink(p.stats, (r: { k: number; v: number }) => r.v, (r) => r.k));
    }
  },
  { name: 'bench groupby' },
);

export interface JoinParams {
  /** Probe rows p(k = h(i) mod buildRows, pv = i mod 1000). */
  rows: number;
  /** Build rows b(k = j, bv = j mod 1000). */
  buildRows: number;
  stats: SharedArrayBuffer;
}

/**
 * The batch bench's join (bench/batch/data.ts: every probe row matches one build row; SELECT count(*),
 * sum(pv), sum(bv) FROM p JOIN b USING (k)) through the DataStream batch API, runtimeMode 'batch':
 * probe.join(build).where('k').equalTo('k').with((l, r) => ({ pv, bv }), projection) → sink (count,
 * sum of pv, sum of bv).
 */
export const joinJob = defineJob(
  import.meta.url,
  (env, p: JoinParams) => {
    const parallelism = env.getParallelism();
    const probe = env
      .fromGenerator(
        p.rows,
        afterStart(p.stats, parallelism, function probe(i: number) {
          return { k: h(i) % p.buildRows, pv: i % 1000 };
        }),
      )
      .withSchema(schema({ k: t.i64(), pv: t.i64() }));
    const build = env
      .fromGenerator(
        p.buildRows,
        afterStart(p.stats, parallelism, function build(j: number) {
          return { k: j, bv: j % 1000 };
        }),
      )
      .withSchema(schema({ k: t.i64(), bv: t.i64() }));
    probe
      .join(build)
      .where('k')
      .equalTo('k')
      .with((l: { pv: number }, r: { bv: number }) => ({ pv: l.pv, bv: r.bv }), { left: ['pv'], right: ['bv'] })
      .addSink(statsSink(p.stats, (r: { pv: number; bv: number }) => Number(r.pv), (r) => Number(r.bv), 'sum'));
  },
  { name: 'bench join' },
);

export interface LatEv extends Ev {
  /** Creation time (absNow) in the generator. */
  t: number;
}

export interface LatencyParams {
  rate: number;
  keys: number;
  /** Records each sink subtask has room for. */
  cap: number;
  /** latencyStats(cap): per sink subtask a count (Int32) and, per record, received, created, index (Float64). */
  stats: SharedArrayBuffer;
}

export function latencyStats(cap: number): SharedArrayBuffer {
  return new SharedArrayBuffer(64 + MAX_SUBTASKS * cap * 3 * 8);
}

/** Views of a latency stats buffer: counts[s], and received/created/index of sink subtask s. */
export function latencyViews(buf: SharedArrayBuffer, cap: number): { counts: Int32Array; received(s: number): Float64Array; created(s: number): Float64Array; index(s: number): Float64Array } {
  const counts = new Int32Array(buf, 0, MAX_SUBTASKS);
  const at = (s: number, j: number) => new Float64Array(buf, 64 + (s * 3 + j) * cap * 8, cap);
  return { counts, received: (s) => at(s, 0), created: (s) => at(s, 1), index: (s) => at(s, 2) };
}

/**
 * `fromGenerator(Infinity, …, { ratePerSecond })` → keyBy('k') → reduce (running sum, keeping the
 * newest record's fields) → sink; each event carries its creation time, the sink (in its worker)
 * stores when it got it. Runs until cancelled.
 */
export const latencyJob = defineJob(
  import.meta.url,
  (env, p: LatencyParams) => {
    const v = latencyViews(p.stats, p.cap);
    const received = Array.from({ length: MAX_SUBTASKS }, (_, s) => v.received(s));
    const created = Array.from({ length: MAX_SUBTASKS }, (_, s) => v.created(s));
    const index = Array.from({ length: MAX_SUBTASKS }, (_, s) => v.index(s));
    const gen = makeGen(p.keys);
    env
      .fromGenerator(Infinity, function timed(i): LatEv {
        const e = gen(i) as LatEv;
        e.t = absNow();
        return e;
      }, { ratePerSecond: p.rate })
      .keyBy('k')
      .reduce((a, b) => ({ k: b.k, v: a.v + b.v, i: b.i, t: b.t }))
      .addSink((e: LatEv, ctx) => {
        const now = absNow();
        const s = ctx.subtaskIndex;
        const j = v.counts[s]!;
        if (j < p.cap) {
          received[s]![j] = now;
          created[s]![j] = e.t;
          index[s]![j] = e.i;
          v.counts[s] = j + 1;
        }
      });
  },
  { name: 'bench latency' },
);
