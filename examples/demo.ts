// A first Sluice job: generate 100k trades, total the traded value per symbol in batch mode, and show
// the top symbols, the execution plan and what each operator did; then the same trades as an
// out-of-order stream, totalled per symbol and event-time minute. No files, no network.
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

interface Trade {
  id: number;
  ts: number; // event time, ms since the epoch
  key: string; // the symbol
  price: number;
}

const SYMBOLS = ['AAPL', 'MSFT', 'GOOG', 'AMZN', 'NVDA', 'META', 'TSLA', 'ORCL', 'INTC', 'IBM'];
const START = Date.UTC(2024, 0, 2, 14, 30);

/** A deterministic pseudo-random trade for index i (same on every run and every runtime). */
function trade(i: number): Trade {
  const h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  return { id: i, ts: START + i * 10, key: SYMBOLS[h % SYMBOLS.length]!, price: 10 + (h % 99_000) / 100 };
}

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
