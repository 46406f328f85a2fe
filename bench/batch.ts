// Owns the batch benchmark: sort, join, groupby and external-sort, with Sluice and its peers (native
// DuckDB with 1 and 2 threads, duckdb-wasm under Node, arquero, plain JS) measured side by side in one
// run — repetitions interleaved across engines, median reported — and the results written to
// bench/results/batch.json and the batch section of bench/RESULTS.md.
//
//   node --import tsx bench/batch.ts [--scale 0.1] [--xscale 0.1] [--workloads sort,join] [--engines sluice,duckdb] [--reps 3] [--warmup 1] [--no-write] [--in-process]
//   make bench-batch                       (full size: 10M rows; external-sort 100M rows, 1 GiB budget)
//
// Every engine runs in a child process of its own (bench/batch/engine-process.ts, started once with
// --expose-gc and kept for the whole run; DuckDB's 1- and 2-thread entries share one), so no engine
// measures another's heap: duckdb-wasm keeps ~60 MB of JS heap alive for its database, and with it in
// the same process every full GC that another engine's allocations trigger marks that heap too (Sluice
// measured ~2× slower after it). The parent still interleaves the repetitions: one run at a time, one
// engine after another, rotating the start. `--in-process` runs everything in this process instead.
// Before the timed repetitions of a workload, every engine runs it `--warmup` times (default 1), untimed
// but checked: JIT tiers, first-touch memory and caches are then warm for every engine alike, so the
// median of a few repetitions is not one cold run away from another value.
//
// --scale multiplies the rows of sort/join/groupby (and the join build side, the groupby key count);
// --xscale does the same for external-sort's rows and budget (default: --scale).
//
// Each engine generates the same rows inside itself (formulas in bench/batch/data.ts), untimed; the
// clock runs from "rows are in the engine" to "result materialized and checked"; every engine's check
// string must equal the one computed from the formulas, or the run fails.
//
// ── Plugging in an engine entry (the join / groupby helpers) ──────────────────────────────────────
// The Sluice entry of `join` is bench/batch/sluice-join.ts and of `groupby` bench/batch/sluice-groupby.ts;
// when the file exists it is loaded, otherwise the table says "not yet". Each must export
//
//   export async function run(rows: number, opts: BatchBenchOptions): Promise<{ seconds: number; check: string }>
//
// (types in bench/batch/data.ts). `rows` = opts.rows = the probe rows (join) or input rows (groupby);
// opts.buildRows / opts.groups / opts.threads (1) / opts.tmpDir (for spill) are set. Generate the rows
// straight into binary batches with the formulas (untimed), start the clock when they are in the engine,
// stop it after the result is materialized and the check string computed, and return both. Checks:
//   join     `${count}|${sum pv}|${sum bv}`          groupby  `${groups}|${sum of s}|${max of c}`

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectedCheck, WORKLOADS, type BatchBenchOptions, type Engine, type RunResult, type Workload } from './batch/data.ts';
import { hasSluiceEntry, loadRun, type RunReply, type RunRequest } from './batch/engine-process.ts';

const here = dirname(fileURLToPath(import.meta.url));

function arg(name: string): string | undefined {
  const a = process.argv;
  const i = a.indexOf(`--${name}`);
  if (i >= 0) return a[i + 1];
  const eq = a.find((x) => x.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

const scale = Number(arg('scale') ?? 1);
const xscale = Number(arg('xscale') ?? scale);
const reps = Number(arg('reps') ?? 3);
const warmup = Number(arg('warmup') ?? 1);
const workloads = (arg('workloads')?.split(',') ?? WORKLOADS) as Workload[];
const engineFilter = arg('engines')?.split(',');
const write = !process.argv.includes('--no-write');
const inProcess = process.argv.includes('--in-process');
for (const w of workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}; one of ${WORKLOADS.join(', ')}`);

interface Entry {
  engine: Engine;
  threads: number;
  available: boolean; // false: not yet
  note?: string;
}

function entries(w: Workload): Entry[] {
  const inMemory = w === 'external-sort' ? 'in memory, no budget' : undefined;
  const all: Entry[] = [
    { engine: 'sluice', threads: 1, available: hasSluiceEntry(w) },
    { engine: 'duckdb', threads: 1, available: true },
    { engine: 'duckdb', threads: 2, available: true },
    { engine: 'duckdb-wasm', threads: 1, available: true },
    { engine: 'arquero', threads: 1, available: true, note: inMemory },
    { engine: 'js', threads: 1, available: true, note: inMemory },
  ];
  return all.filter((e) => !engineFilter || engineFilter.includes(e.engine));
}

// ── engine processes ─────────────────────────────────────────────────────────────────────────
const children = new Map<Engine, ChildProcess>();
const pending = new Map<number, { resolve: (r: RunResult) => void; reject: (e: Error) => void; engine: Engine }>();
let seq = 0;

function child(engine: Engine): ChildProcess {
  let c = children.get(engine);
  if (c && c.connected) return c;
  // the parent's Node flags (--import tsx, --cpu-prof, ...) plus --expose-gc: a GC between runs
  const execArgv = [...process.execArgv.filter((a) => a !== '--expose-gc'), '--expose-gc'];
  c = fork(join(here, 'batch', 'engine-process.ts'), [], { execArgv, env: { ...process.env, SLUICE_BENCH_ENGINE_PROCESS: '1' }, stdio: 'inherit' });
  c.on('message', (m: RunReply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if ('error' in m) p.reject(new Error(m.error));
    else p.resolve(m.result);
  });
  c.on('exit', (code, signal) => {
    children.delete(engine);
    for (const [id, p] of pending) {
      if (p.engine !== engine) continue;
      pending.delete(id);
      p.reject(new Error(`${engine} process exited (${signal ?? `code ${code}`})`));
    }
  });
  children.set(engine, c);
  return c;
}

async function runEngine(engine: Engine, rows: number, opts: BatchBenchOptions): Promise<RunResult> {
  if (inProcess) {
    const res = await (await loadRun(engine, opts.workload))(rows, opts);
    (globalThis as { gc?: () => void }).gc?.();
    return res;
  }
  const id = seq++;
  const req: RunRequest = { id, engine, rows, opts };
  return new Promise<RunResult>((resolve, reject) => {
    pending.set(id, { resolve, reject, engine });
    child(engine).send(req);
  });
}

function sizes(w: Workload, tmpDir: string): BatchBenchOptions {
  const s = w === 'external-sort' ? xscale : scale;
  return {
    workload: w,
    rows: Math.round((w === 'external-sort' ? 100_000_000 : 10_000_000) * s),
    buildRows: Math.max(1, Math.round(1_000_000 * s)),
    groups: Math.max(1, Math.round(100_000 * s)),
    budgetBytes: Math.round((1 << 30) * s),
    threads: 1,
    tmpDir,
  };
}

interface Row {
  workload: Workload;
  engine: Engine;
  threads: number;
  rows: number;
  seconds: number | null;
  runs: number[];
  note?: string;
  error?: string;
  budgetBytes?: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const results: Row[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'sluice-bench-batch-'));
try {
  for (const w of workloads) {
    const base = sizes(w, tmp);
    const want = expectedCheck(base);
    const list = entries(w);
    const rows: Row[] = list.map((e) => ({
      workload: w,
      engine: e.engine,
      threads: e.threads,
      rows: base.rows,
      seconds: null,
      runs: [],
      note: e.available ? e.note : 'not yet',
      ...(w === 'external-sort' ? { budgetBytes: base.budgetBytes } : {}),
    }));
    console.log(`\n${w}: ${base.rows.toLocaleString('en')} rows${w === 'join' ? ` × ${base.buildRows.toLocaleString('en')} build` : w === 'groupby' ? ` into ${base.groups.toLocaleString('en')} keys` : w === 'external-sort' ? `, budget ${(base.budgetBytes / 2 ** 20).toFixed(0)} MiB` : ''}; check ${want}`);
    for (let r = 0; r < warmup; r++) {
      for (let j = 0; j < list.length; j++) {
        const e = list[j]!;
        const row = rows[j]!;
        if (!e.available || row.error) continue;
        try {
          const res = await runEngine(e.engine, base.rows, { ...base, threads: e.threads });
          if (res.check !== want) throw new Error(`check ${res.check} != expected ${want}`);
          console.log(`  warm-up ${e.engine}${e.engine === 'duckdb' ? ` ${e.threads}t` : ''}: ${res.seconds.toFixed(3)} s`);
        } catch (err) {
          row.error = (err as Error).message.split('\n')[0]!.slice(0, 160);
          console.log(`  warm-up ${e.engine}: FAILED ${row.error}`);
        }
      }
    }
    for (let r = 0; r < reps; r++) {
      // interleaved: one repetition of every engine, then the next (rotating the start to spread drift)
      for (let j = 0; j < list.length; j++) {
        const idx = (j + r) % list.length;
        const e = list[idx]!;
        const row = rows[idx]!;
        if (!e.available || row.error) continue;
        try {
          const res = await runEngine(e.engine, base.rows, { ...base, threads: e.threads });
          if (res.check !== want) throw new Error(`check ${res.check} != expected ${want}`);
          row.runs.push(res.seconds);
          console.log(`  rep ${r + 1} ${e.engine}${e.engine === 'duckdb' ? ` ${e.threads}t` : ''}: ${res.seconds.toFixed(3)} s`);
        } catch (err) {
          row.error = (err as Error).message.split('\n')[0]!.slice(0, 160);
          console.log(`  rep ${r + 1} ${e.engine}: FAILED ${row.error}`);
        }
      }
    }
    for (const row of rows) row.seconds = row.runs.length ? median(row.runs) : null;
    results.push(...rows);
  }
} finally {
  for (const c of children.values()) c.disconnect();
  rmSync(tmp, { recursive: true, force: true });
}

// ── report ─────────────────────────────────────────────────────────────────────────────────────
const cmd = `node --import tsx bench/batch.ts ${process.argv.slice(2).join(' ')}`.trim();
const fmt = (n: number) => n.toLocaleString('en');
const lines: string[] = [];
lines.push('## Batch: sort, join, groupby, external sort');
lines.push('');
lines.push(
  `Command: \`${cmd}\` (full size: \`make bench-batch\`), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, ${warmup} untimed warm-up run${warmup === 1 ? '' : 's'} per engine, then ${reps} interleaved repetitions, median; ` +
    (inProcess ? 'every engine in this one process.' : 'each engine in a Node process of its own (bench/batch/engine-process.ts), runs interleaved by the parent.'),
);
lines.push(
  'Each engine generates the same rows inside itself (bench/batch/data.ts); timed from "rows are in the engine" to "result materialized and checked" ' +
    '(every engine must produce the same check string). "vs DuckDB 1t" = engine seconds / DuckDB native 1-thread seconds (lower is better; 2.0× = twice as slow).',
);
lines.push('');
lines.push('| workload | rows | engine | threads | median s | vs DuckDB 1t | note |');
lines.push('|---|---:|---|---:|---:|---:|---|');
for (const w of workloads) {
  const ref = results.find((r) => r.workload === w && r.engine === 'duckdb' && r.threads === 1)?.seconds ?? null;
  for (const r of results.filter((x) => x.workload === w)) {
    const size =
      w === 'join' ? `${fmt(r.rows)} × ${fmt(sizes(w, '').buildRows)}` : w === 'groupby' ? `${fmt(r.rows)} → ${fmt(sizes(w, '').groups)} keys` : w === 'external-sort' ? `${fmt(r.rows)}, budget ${fmt(Math.round(r.budgetBytes! / 2 ** 20))} MiB` : fmt(r.rows);
    const s = r.seconds === null ? '–' : r.seconds.toFixed(3);
    const ratio = r.seconds !== null && ref ? `${(r.seconds / ref).toFixed(2)}×` : '–';
    const note = r.error ? `failed: ${r.error.replace(/\|/g, '/')}` : (r.note ?? '');
    lines.push(`| ${w} | ${size} | ${r.engine} | ${r.threads} | ${r.seconds === null && !r.error && r.note === 'not yet' ? 'not yet' : s} | ${ratio} | ${note} |`);
  }
}
lines.push('');
lines.push('Raw numbers: `bench/results/batch.json`.');
const section = lines.join('\n');
console.log('\n' + section);

if (write) {
  const json = join(here, 'results', 'batch.json');
  writeFileSync(
    json,
    JSON.stringify(
      {
        command: cmd,
        node: process.version,
        date: new Date().toISOString(),
        scale,
        xscale,
        reps,
        warmup,
        entries: results.map((r) => ({ workload: r.workload, engine: r.engine, threads: r.threads, rows: r.rows, seconds: r.seconds, runs: r.runs, ...(r.budgetBytes ? { budgetBytes: r.budgetBytes } : {}), ...(r.note ? { note: r.note } : {}), ...(r.error ? { error: r.error } : {}) })),
      },
      null,
      2,
    ) + '\n',
  );
  const md = join(here, 'RESULTS.md');
  const text = readFileSync(md, 'utf8');
  const block = `<!-- batch:start -->\n${section}\n<!-- batch:end -->`;
  const re = /<!-- batch:start -->[\s\S]*?<!-- batch:end -->/;
  writeFileSync(md, re.test(text) ? text.replace(re, block) : `${text.trimEnd()}\n\n${block}\n`);
  console.log(`\nwrote ${json} and the batch section of ${md}`);
}
