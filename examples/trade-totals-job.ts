// The demo's trade-totals job as a job definition, so that worker threads can build it too: each worker
// imports this module and builds the same job (see examples/demo.ts, which runs it on 2 workers).

import { defineJob } from '../src/index.ts';

export interface Trade {
  id: number;
  ts: number; // event time, ms since the epoch
  key: string; // the symbol
  price: number;
}

export const SYMBOLS = ['AAPL', 'MSFT', 'GOOG', 'AMZN', 'NVDA', 'META', 'TSLA', 'ORCL', 'INTC', 'IBM'];
const START = Date.UTC(2024, 0, 2, 14, 30);

/** A deterministic pseudo-random trade for index i (same on every run, runtime and thread). */
export function trade(i: number): Trade {
  const h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  return { id: i, ts: START + i * 10, key: SYMBOLS[h % SYMBOLS.length]!, price: 10 + (h % 99_000) / 100 };
}

/** Total traded value per symbol over `trades` generated trades (batch mode: one total per symbol). */
export const tradeTotals = defineJob(import.meta.url, (env, p: { trades: number }) => ({
  totals: env
    .fromGenerator(p.trades, trade, { name: 'trades' })
    .filter((t) => t.price >= 20)
    .name('drop penny trades')
    .keyBy('key')
    .sum('price')
    .map((t) => ({ symbol: t.key, total: Math.round(t.price) }))
    .collect(),
}), { name: 'trade totals' });
