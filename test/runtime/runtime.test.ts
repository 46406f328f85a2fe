// Tests the runtime pieces: channels with in-band end-of-input, keyed state scoped by key group, record
// writers' routing and batching, and that the executor yields to the event loop.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StreamEnvironment, hashJsKey, keyGroupOf, subtaskForKeyGroup } from '../../src/index.ts';
import { Channel, END_OF_INPUT } from '../../src/runtime/channel.ts';
import { HeapKeyedState, stateKeyOf } from '../../src/runtime/keyed-state.ts';
import { KeyGroupAssigner } from '../../src/runtime/keys.ts';
import { RecordWriter } from '../../src/runtime/record-writer.ts';
import { addOperatorTo } from '../../src/api/datastream.ts';
import type { Output, StreamOperator } from '../../src/graph/operator.ts';

test('channel: FIFO of data batches then end-of-input; nothing after it', () => {
  const ch = new Channel<number>(0, 't');
  for (let i = 0; i < 200; i++) ch.push({ kind: 'data', batch: [i, i] });
  assert.is(ch.bufferedRecords, 400);
  for (let i = 0; i < 150; i++) assert.equal(ch.poll(), { kind: 'data', batch: [i, i] });
  ch.push(END_OF_INPUT);
  assert.throws(() => ch.push({ kind: 'data', batch: [1] }), /after end-of-input/);
  for (let i = 150; i < 200; i++) assert.equal(ch.poll(), { kind: 'data', batch: [i, i] });
  assert.is(ch.poll()?.kind, 'end-of-input');
  assert.is(ch.poll(), undefined);
  assert.ok(ch.isEmpty);
  assert.is(ch.bufferedRecords, 0);
});

test('keyed state: scoped by key group, composite keys by value, entries in key-group order', () => {
  const s = new HeapKeyedState<number>();
  s.set(5, 'a', 1);
  s.set(2, ['a', 1], 2);
  s.set(2, 'b', 3);
  s.set(5, 'a', 4);
  assert.is(s.get(2, ['a', 1]), 2); // a fresh array with equal elements is the same key
  assert.is(s.get(5, 'a'), 4);
  assert.is(s.get(2, 'a'), undefined); // another key group
  assert.is(s.size, 3);
  assert.equal([...s.entries()], [[2, ['a', 1], 2], [2, 'b', 3], [5, 'a', 4]]);
  s.delete(2, 'b');
  assert.equal(s.keyGroups(), [2, 5]);
  assert.is(s.size, 2);
  // a string can never collide with a composite key
  assert.is.not(stateKeyOf('\u0000[s1:a]'), stateKeyOf(['a']));
  assert.is(stateKeyOf(-0), stateKeyOf(0));
  assert.is(stateKeyOf(undefined), stateKeyOf(null));
});

test('record writer: hash routes by key group, batches of at most batchSize, end-of-input on all', () => {
  const chans = [0, 1, 2].map((i) => new Channel<{ k: string }>(i, `c${i}`));
  const w = new RecordWriter(chans, { kind: 'hash', key: { fn: (r: { k: string }) => r.k, description: 'k' } }, 4, 16, 0);
  const recs = Array.from({ length: 50 }, (_, i) => ({ k: `key${i % 9}` }));
  w.write(recs.slice(0, 30));
  w.write(recs.slice(30));
  w.finish();
  let total = 0;
  chans.forEach((ch, i) => {
    for (let ev = ch.poll(); ev; ev = ch.poll()) {
      if (ev.kind !== 'data') {
        assert.ok(ch.isEmpty, 'end-of-input comes last');
        continue;
      }
      assert.ok(ev.batch.length >= 1 && ev.batch.length <= 4);
      for (const r of ev.batch) assert.is(subtaskForKeyGroup(keyGroupOf(hashJsKey(r.k), 16), 3, 16), i);
      total += ev.batch.length;
    }
  });
  assert.is(total, 50);
});

test('record writer: forward passes full batches through, rebalance is round-robin', () => {
  const f = new Channel<number>(0, 'f');
  const w = new RecordWriter([f], { kind: 'forward' }, 3, 128, 0);
  const full = [1, 2, 3];
  w.write(full);
  const ev = f.poll();
  assert.ok(ev?.kind === 'data' && ev.batch === full, 'a full batch is not copied');
  const rs = [0, 1].map((i) => new Channel<number>(i, `r${i}`));
  const r = new RecordWriter(rs, { kind: 'rebalance' }, 10, 128, 1);
  r.write([10, 11, 12, 13, 14]);
  r.flush();
  assert.equal(rs.map((c) => (c.poll() as { batch: readonly number[] }).batch), [[11, 13], [10, 12, 14]]);
});

test('key group assigner: memoized string keys agree with hashJsKey, also past its memo limit', () => {
  const a = new KeyGroupAssigner({ fn: (k: unknown) => k, description: 'k' }, 128, 3);
  for (let round = 0; round < 2; round++) {
    for (const k of ['a', 'b', 'c', 'd', 'e', 7, 2.5, ['x', 1], null]) {
      assert.is(a.keyGroup(k, 'op', 0, 0), keyGroupOf(hashJsKey(k), 128), String(k));
    }
  }
});

test('the executor yields to the event loop during a long job', async () => {
  const env = StreamEnvironment.create({ parallelism: 2, batchSize: 64 });
  const out = env.fromGenerator(300_000, (i) => ({ k: i % 1000, v: 1 })).keyBy('k').sum('v').collect();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const t0 = Date.now();
  try {
    await env.execute();
  } finally {
    clearInterval(timer);
  }
  assert.is(out.results.length, 300_000);
  if (Date.now() - t0 > 50) assert.ok(ticks > 0, 'timers ran while the job was running');
});

test('an operator emitting a large result in chunks from an async endInput (Output.flush) feeds a bounded consumer to the end', async () => {
  // the chunks fill the bounded channel to the next task; flush() waits for room, so the consumer
  // must run while the producer's step is suspended (the executor must not sleep through the pushes)
  const env = StreamEnvironment.create({ parallelism: 1, batchSize: 16 });
  const src = env.fromCollection([1, 2, 3]);
  class Burst implements StreamOperator<number, number> {
    processBatch(): void {}
    async endInput(out: Output<number>): Promise<void> {
      for (let chunk = 0; chunk < 50; chunk++) {
        for (let i = 0; i < 100; i++) out.push(chunk * 100 + i);
        await out.flush?.();
      }
    }
  }
  const burst = addOperatorTo<number>(env, 'Burst', () => new Burst(), { input: src.transformation });
  const got = await burst.rebalance().map((x) => x).executeAndCollect();
  assert.is(got.length, 5000);
  assert.equal(got, Array.from({ length: 5000 }, (_, i) => i));
});

test.run();
