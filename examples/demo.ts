// A first Sluice job: generate 100k trades, total the traded value per symbol in batch mode, and show
// the top symbols, the execution plan and what each operator did; then the same trades as an
// out-of-order stream, totalled per symbol and event-time minute; then the totals job again, on two
// worker threads (where the runtime has them). No files, no network.
//
//   node --import tsx examples/demo.ts      (or: deno run examples/demo.ts / bun examples/demo.ts)

import {
  type KeyedProcessFunction,
  type MapState,
  MapStateDescriptor,
  OutputTag,
  StreamEnvironment,
  WatermarkStrategy,
} from '../src/index.ts';

import { trade, tradeTotals, type Trade } from './trade-totals-job.ts';
import { workersForRuntime } from '../src/platform/workers.ts';

// Batch mode: the keyed sum emits one final total per symbol at the end, instead of a running total
// per trade (streaming mode).
const env = StreamEnvironment.create({ parallelism: 2, runtimeMode: 'batch' });

const totals = env
  .fromGenerator(100_000, trade, { name: 'trades' }) // 2 subtasks, 50k trades each
  .filter((t) => t.price >= 20)
  .name('drop penny trades')
  .keyBy('key') // hash-partition by symbol: each symbol's trades meet in one subtask
  .sum('price')
  .map((t) => ({ symbol: t.key, total: Math.round(t.price) }))
  .collect();

console.log('Execution plan (operators in one chain pass records by direct call):');
console.log(env.getExecutionPlan('trade totals'));
console.log();

const result = await env.execute('trade totals');

const top = [...totals.results].sort((a, b) => b.total - a.total).slice(0, 5);
console.log('Top symbols by traded value:');
for (const { symbol, total } of top) console.log(`  ${symbol.padEnd(5)} ${total.toLocaleString('en-US').padStart(14)}`);
console.log();
console.log(result.toString());

// Streaming mode with event time: one-minute volume per symbol, computed by a keyed process function
// with state and an event-time timer per window. Trades arrive up to 5 s out of order; the watermark
// trails the largest timestamp seen by 5 s, and a window fires once the watermark passes its end.
const MINUTE = 60_000;
const stream = StreamEnvironment.create({ parallelism: 2 });
const late = new OutputTag<Trade>('late trades');
const perMinute = stream
  .fromGenerator(20_000, (i) => {
    const t = trade(i);
    return { ...t, ts: t.ts - ((i * 7919) % 5_000) }; // shuffled by up to 5 s
  }, { name: 'trades' })
  .assignTimestampsAndWatermarks(WatermarkStrategy.forBoundedOutOfOrderness<Trade>(5_000).withTimestampAssigner((t) => t.ts))
  .keyBy('key')
  .process<{ symbol: string; minute: string; volume: number }>({
    volumes: undefined as unknown as MapState<number, number>,
    open(ctx) {
      this.volumes = ctx.getState(new MapStateDescriptor<number, number>('volume per window'));
    },
    processElement(t, ctx) {
      const end = Math.floor(t.ts / MINUTE) * MINUTE + MINUTE;
      if (end <= ctx.timerService().currentWatermark()) return ctx.output(late, t);
      this.volumes.put(end, (this.volumes.get(end) ?? 0) + t.price);
      ctx.timerService().registerEventTimeTimer(end - 1);
    },
    onTimer(ts, ctx, out) {
      const end = ts + 1;
      out.collect({ symbol: ctx.getCurrentKey(), minute: new Date(end - MINUTE).toISOString().slice(11, 16), volume: Math.round(this.volumes.get(end)!) });
      this.volumes.remove(end);
    },
  } as KeyedProcessFunction<string, Trade, { symbol: string; minute: string; volume: number }> & { volumes: MapState<number, number> })
  .name('volume per minute');
const windows = perMinute.collect();
const lateTrades = perMinute.getSideOutput(late).collect();
const streamed = await stream.execute('volume per minute');
const aapl = windows.results.filter((w) => w.symbol === 'AAPL').sort((a, b) => (a.minute < b.minute ? -1 : 1));
console.log();
console.log(`Event time: AAPL volume per minute (${windows.results.length} windows, ${lateTrades.results.length} late trades):`);
for (const w of aapl) console.log(`  ${w.minute}  ${w.volume.toLocaleString('en-US').padStart(10)}`);
console.log();
console.log(streamed.toString());

// The totals job again, defined with defineJob in a module of its own (examples/trade-totals-job.ts) so
// that worker threads can build it: 4 parallel subtasks on 2 workers, the keyed exchange crossing
// threads in network buffers. Same totals as the one-thread run above.
if (workersForRuntime().supported) {
  const onWorkers = await tradeTotals.run({ workers: 2, params: { trades: 100_000 }, environment: { parallelism: 4, runtimeMode: 'batch' } });
  const same = JSON.stringify([...onWorkers.outputs.totals.results].sort((a, b) => (a.symbol < b.symbol ? -1 : 1))) ===
    JSON.stringify([...totals.results].sort((a, b) => (a.symbol < b.symbol ? -1 : 1)));
  console.log();
  console.log(`On 2 worker threads (parallelism 4): ${onWorkers.outputs.totals.results.length} totals, ${same ? 'the same as' : 'DIFFERENT from'} the one-thread run`);
  console.log(onWorkers.result.toString());
  if (!same) process.exitCode = 1;
}
