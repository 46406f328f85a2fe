// Owns the tests of network buffer pools: the budget in buffers, guaranteed minimums and floating
// buffers redistributed as local pools come and go, waiting for a buffer, and the metrics that
// backpressure is measured with.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobDefinitionError, MemoryBudgetError } from '../../../src/core/errors.ts';
import { type LocalBufferPool, NetworkBufferPool } from '../../../src/runtime/network/buffer-pool.ts';
import { forSeeds } from '../../reference/random.ts';

const KiB = 1024;

function take(pool: LocalBufferPool, n: number): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (let i = 0; i < n; i++) {
    const b = pool.requestBuffer();
    assert.ok(b, `buffer ${i} of ${n} from '${pool.name}'`);
    out.push(b!);
  }
  return out;
}

test('the budget is whole buffers; buffers are allocated lazily and reused', () => {
  const net = new NetworkBufferPool({ networkMemory: '1mb', bufferBytes: 32 * KiB });
  assert.is(net.totalBuffers, 32);
  assert.is(net.describe(), '1 MiB (32 buffers of 32 KiB)');
  assert.is(new NetworkBufferPool({ networkMemory: 100_000, bufferBytes: 32 * KiB }).totalBuffers, 3);
  assert.is(new NetworkBufferPool().totalBuffers, 2048); // 64 MiB of 32 KiB by default
  const p = net.createLocalPool({ name: 'a', minBuffers: 1 });
  assert.is(net.allocatedBuffers, 0);
  const [b] = take(p, 1);
  assert.is(b!.byteLength, 32 * KiB);
  assert.is(net.allocatedBuffers, 1);
  p.recycle(b!);
  assert.is(p.requestBuffer(), b, 'the free list hands the same buffer out again');
  for (const bad of [0, 100, 1001, 255]) {
    assert.throws(() => new NetworkBufferPool({ bufferBytes: bad }), (e: unknown) => e instanceof JobDefinitionError && /bufferBytes/.test((e as Error).message));
  }
  assert.throws(() => new NetworkBufferPool({ networkMemory: 'lots' }), /networkMemory/);
  assert.throws(() => net.createLocalPool({ name: 'z', minBuffers: 0 }), /minBuffers/);
  assert.throws(() => net.createLocalPool({ name: 'z', minBuffers: 3, maxBuffers: 2 }), /maxBuffers/);
});

test('a pool holds up to its size, then answers undefined until a buffer comes back', () => {
  const net = new NetworkBufferPool({ networkMemory: 32 * 1024, bufferBytes: 1024 });
  const p = net.createLocalPool({ name: 'out', minBuffers: 2, maxBuffers: 5 });
  assert.is(p.size, 5);
  const bufs = take(p, 5);
  assert.not.ok(p.isAvailable);
  assert.is(p.requestBuffer(), undefined);
  assert.is(p.metrics.waits, 1);
  let told = 0;
  p.onAvailable(() => told++);
  assert.is(told, 0);
  p.recycle(bufs.pop()!);
  assert.is(told, 1);
  assert.ok(p.isAvailable);
  assert.is(p.metrics.buffersInUse, 4);
  assert.is(p.metrics.maxBuffersInUse, 5);
  p.onAvailable(() => told++); // available now: called at once
  assert.is(told, 2);
});

test('floating buffers are divided by capacity; the rest goes by largest remainder; sizes follow pools coming and going', () => {
  const net = new NetworkBufferPool({ networkMemory: 32 * 1024, bufferBytes: 1024 }); // 32 buffers
  const a = net.createLocalPool({ name: 'a', minBuffers: 2 });
  assert.is(a.size, 32);
  const b = net.createLocalPool({ name: 'b', minBuffers: 4, maxBuffers: 8 });
  // excess 26; capacities a 26, b 4 → shares 22.53 and 3.47 → a 22+1, b 3
  assert.is(a.size, 25);
  assert.is(b.size, 7);
  const c = net.createLocalPool({ name: 'c', minBuffers: 6, maxBuffers: 6 });
  // excess 20; capacities a 20, b 4, c 0 → 16.67 and 3.33 → a 16+1, b 3
  assert.equal([a.size, b.size, c.size], [19, 7, 6]);
  assert.is(a.size + b.size + c.size, 32);
  b.destroy();
  // excess 24; a can take it all
  assert.equal([a.size, c.size], [26, 6]);
  c.destroy();
  assert.is(a.size, 32);
  assert.equal(net.localPools.map((p) => p.name), ['a']);
  b.destroy(); // idempotent
});

test('guarantees beyond the budget are a MemoryBudgetError naming the budget, the pools and a budget that would do', () => {
  const net = new NetworkBufferPool({ networkMemory: '256kb', bufferBytes: 32 * KiB }); // 8 buffers
  net.createLocalPool({ name: 'Map#0 → Sink', minBuffers: 3 });
  net.createLocalPool({ name: 'Map#1 → Sink', minBuffers: 3 });
  assert.throws(
    () => net.createLocalPool({ name: 'Source#0 → Map', minBuffers: 3 }),
    (e: unknown) =>
      e instanceof MemoryBudgetError &&
      /networkMemory of 256 KiB \(8 buffers of 32 KiB\)/.test(e.message) &&
      /'Source#0 → Map' its 3 buffers/.test(e.message) &&
      /'Map#0 → Sink' 3/.test(e.message) &&
      /at least 288 KiB/.test(e.message),
  );
  assert.is(net.localPools.length, 2, 'the refused pool was not added');
});

test('a pool shrunk below what it holds gets nothing until it is under its size; its returns go to the pool that grew', () => {
  const net = new NetworkBufferPool({ networkMemory: 32 * 1024, bufferBytes: 1024 });
  const a = net.createLocalPool({ name: 'a', minBuffers: 2 });
  const held = take(a, 30);
  const b = net.createLocalPool({ name: 'b', minBuffers: 10, maxBuffers: 10 });
  assert.equal([a.size, b.size], [22, 10]);
  assert.is(a.buffersInUse, 30);
  const got = take(b, 2); // only 2 of the 32 are free
  assert.is(b.requestBuffer(), undefined, 'b is under its size but the budget is spent');
  let bTold = 0;
  b.onAvailable(() => bTold++);
  a.recycle(held.pop()!);
  assert.is(bTold, 1, 'the buffer a gave back is b\'s to take');
  got.push(...take(b, 1));
  for (let i = 0; i < 7; i++) a.recycle(held.pop()!);
  got.push(...take(b, 7));
  assert.is(b.buffersInUse, 10);
  assert.is(a.buffersInUse, 22);
  assert.is(a.requestBuffer(), undefined, 'a is at its new size');
  a.recycle(held.pop()!);
  assert.ok(a.requestBuffer(), 'a is below its size again');
  assert.is(net.metrics.buffersInUse, 32);
  assert.ok(net.metrics.maxBuffersInUse <= net.totalBuffers);
});

test('wait time runs from a refused request until a buffer is there again (injectable clock)', () => {
  let now = 1000;
  const net = new NetworkBufferPool({ networkMemory: 2048, bufferBytes: 1024, now: () => now });
  const p = net.createLocalPool({ name: 'p', minBuffers: 2 });
  const [x] = take(p, 2);
  now = 1010;
  assert.is(p.requestBuffer(), undefined);
  now = 1015;
  assert.is(p.requestBuffer(), undefined); // still the same wait
  assert.is(p.metrics.waitTimeMs, 5, 'an ongoing wait counts up to now');
  const woken = p.whenAvailable();
  now = 1035;
  p.recycle(x!);
  assert.is(p.metrics.waitTimeMs, 25);
  assert.is(p.metrics.waits, 2);
  now = 1100;
  assert.ok(p.requestBuffer());
  assert.is(p.metrics.waitTimeMs, 25, 'time between being told and asking is not backpressure');
  assert.is(net.metrics.waitTimeMs, 25);
  return woken;
});

test('unpooled buffers are dropped on recycle; detached buffers and double recycles are errors; lost buffers can be written off', () => {
  const net = new NetworkBufferPool({ networkMemory: 4096, bufferBytes: 1024 });
  const p = net.createLocalPool({ name: 'p', minBuffers: 4 });
  p.recycle(new ArrayBuffer(5000)); // a large record's own buffer
  assert.is(p.buffersInUse, 0);
  const bufs = take(p, 4);
  const detached = bufs[0]!;
  structuredClone(detached, { transfer: [detached] });
  assert.is(detached.byteLength, 0);
  assert.throws(() => p.recycle(detached), /detached/);
  p.discardLost(1); // the detached one never comes back
  assert.is(p.buffersInUse, 3);
  assert.is(net.availableBuffers, 1);
  const replacement = p.requestBuffer();
  assert.ok(replacement, 'a replacement is allocated');
  assert.is(net.allocatedBuffers, 4);
  for (const b of [...bufs.slice(1), replacement!]) p.recycle(b);
  assert.throws(() => p.recycle(new ArrayBuffer(1024)), /more buffers back/);
});

test('buffers recycled after their pool was destroyed go back to the global pool', () => {
  const net = new NetworkBufferPool({ networkMemory: 4096, bufferBytes: 1024 });
  const a = net.createLocalPool({ name: 'a', minBuffers: 1 });
  const held = take(a, 4);
  a.destroy();
  assert.throws(() => a.requestBuffer(), /destroyed/);
  const b = net.createLocalPool({ name: 'b', minBuffers: 2 });
  assert.is(b.requestBuffer(), undefined);
  const ready = b.whenAvailable();
  for (const x of held) a.recycle(x);
  assert.is(net.availableBuffers, 4);
  assert.is(take(b, 4).length, 4);
  return ready;
});

test('random create/destroy/request/recycle keeps every invariant', async () => {
  await forSeeds('pool invariants', 20, (rng) => {
    const net = new NetworkBufferPool({ networkMemory: 64 * 1024, bufferBytes: 1024 }); // 64 buffers
    const pools: { pool: LocalBufferPool; held: ArrayBuffer[] }[] = [];
    for (let step = 0; step < 2000; step++) {
      const op = rng.int(10);
      if (op === 0 && pools.length < 6) {
        const min = rng.range(1, 8);
        const max = rng.bool(0.3) ? undefined : min + rng.int(20);
        try {
          pools.push({ pool: net.createLocalPool({ name: `p${step}`, minBuffers: min, maxBuffers: max }), held: [] });
        } catch (e) {
          assert.ok(e instanceof MemoryBudgetError);
        }
      } else if (op === 1 && pools.length > 0) {
        const [gone] = pools.splice(rng.int(pools.length), 1);
        gone!.pool.destroy();
        for (const b of gone!.held) gone!.pool.recycle(b); // late returns
      } else if (op < 6 && pools.length > 0) {
        const e = pools[rng.int(pools.length)]!;
        const before = e.pool.buffersInUse;
        const b = e.pool.requestBuffer();
        if (b) {
          assert.ok(before < e.pool.size, 'a buffer only below the pool\'s size');
          e.held.push(b);
        }
      } else if (pools.length > 0) {
        const e = pools[rng.int(pools.length)]!;
        if (e.held.length > 0) e.pool.recycle(e.held.splice(rng.int(e.held.length), 1)[0]!);
      }
      let sizes = 0;
      let held = 0;
      for (const { pool, held: h } of pools) {
        assert.ok(pool.size >= pool.minBuffers && pool.size <= pool.maxBuffers, 'size within [min, max]');
        assert.is(pool.buffersInUse, h.length);
        sizes += pool.size;
        held += h.length;
      }
      assert.ok(sizes <= net.totalBuffers, 'sizes fit the budget');
      if (pools.length > 0 && pools.every((p) => p.pool.maxBuffers === Infinity)) assert.is(sizes, net.totalBuffers, 'nothing idle when someone could use it');
      assert.is(net.metrics.buffersInUse, held);
      assert.ok(net.metrics.maxBuffersInUse <= net.totalBuffers);
    }
  });
});

test.run();
