// A first Sluice job: generate 100k trades, total the traded value per symbol in batch mode, and show
// the top symbols, the execution plan and what each operator did. No files, no network.
//
//   node --import tsx examples/demo.ts      (or: deno run examples/demo.ts / bun examples/demo.ts)

import { StreamEnvironment } from '../src/index.ts';

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
