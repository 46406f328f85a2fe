// Owns the tests of the blocking exchange (src/runtime/blocking-channel.ts): nothing visible before
// end-of-input, push order kept with watermarks and status events in between, budgets small enough that
// every run spills several times with the same result as in memory (MessagePack and binary rows,
// batches spanning frames, records larger than a frame, timestamps), the producer pausing while a spill
// is in flight, no spill files left after reading or dispose (the runtime's file store and the memory
// store), and failures naming the channel.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SluiceError } from '../../src/core/errors.ts';
import { schema, t } from '../../src/core/schema.ts';
import { detectPlatform, detectRuntime } from '../../src/platform/index.ts';
import { createMemorySpillStore, memorySpill } from '../../src/platform/spill-memory.ts';
import type { SpillStats, SpillStore, SpillStoreFactory } from '../../src/platform/types.ts';
import { BlockingChannel, BlockingExchangeError, type BlockingChannelOptions } from '../../src/runtime/blocking-channel.ts';
import { ACTIVE_STATUS, type ChannelEvent, END_OF_INPUT, IDLE_STATUS, watermarkEvent } from '../../src/runtime/channel.ts';
import { forSeeds, type Rng } from '../reference/random.ts';

// Every file store of this suite lives under one parent, so the tests can prove nothing is left.
const parent = mkdtempSync(join(tmpdir(), 'sluice-blocking-test-'));
const runtimeSpill = (await detectPlatform()).spill;
const factories: Array<[label: string, factory: SpillStoreFactory]> = [
  [`${detectRuntime()} ${runtimeSpill.kind} store`, runtimeSpill],
  ['memory store', memorySpill],
];

function channel<T = unknown>(options: Partial<BlockingChannelOptions> & Pick<BlockingChannelOptions, 'spill'>): BlockingChannel<T> {
  return new BlockingChannel<T>({ id: 1, description: 'Map#0 -> Reduce#1', spillOptions: { dir: parent }, ...options });
}

/** Polls everything up to end-of-input, waiting on `onAvailable` whenever the channel answers undefined. */
async function drain<T>(ch: BlockingChannel<T>): Promise<ChannelEvent<T>[]> {
  const out: ChannelEvent<T>[] = [];
  let woken = false;
  let wake: (() => void) | undefined;
  ch.onAvailable = () => {
    woken = true;
    wake?.();
  };
  for (let waits = 0; ; ) {
    woken = false;
    const ev = ch.poll();
    if (ev === undefined) {
      assert.ok(ch.external, 'a channel answering undefined before end-of-input is external');
      if (!woken) await hangGuard(new Promise<void>((r) => (wake = r)), 'onAvailable');
      wake = undefined;
      assert.ok(++waits < 1_000_000);
      continue;
    }
    out.push(ev);
    if (ev.kind === 'end-of-input') break;
  }
  assert.not.ok(ch.external, 'not external once end-of-input was polled');
  assert.is(ch.poll(), undefined);
  assert.is(ch.bufferedRecords, 0);
  return out;
}

/** Fails instead of hanging the runner if a promise never settles (a hang guard, not a timing check). */
function hangGuard<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} never happened`)), 20_000);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

/** Pushes `events` and end-of-input, waiting whenever the channel is not available (as a task would). */
async function produce<T>(ch: BlockingChannel<T>, events: readonly ChannelEvent<T>[]): Promise<number> {
  let pauses = 0;
  for (const ev of events) {
    if (!ch.isAvailable) {
      pauses++;
      await hangGuard(new Promise<void>((r) => ch.whenAvailable(r)), 'whenAvailable');
    }
    ch.push(ev);
  }
  ch.push(END_OF_INPUT);
  return pauses;
}

/** Deep equality of event lists that names the first event that differs. */
function sameEvents(got: readonly ChannelEvent[], expected: readonly ChannelEvent[]): void {
  const n = Math.max(got.length, expected.length);
  for (let i = 0; i < n; i++) {
    const g = got[i];
    const x = expected[i];
    if (g?.kind === 'data' && x?.kind === 'data' && g.batch.length === x.batch.length) {
      for (let j = 0; j < x.batch.length; j++) assert.equal(g.batch[j], x.batch[j], `event ${i} of ${n}, record ${j} of ${x.batch.length}`);
    }
    assert.equal(g, x, `event ${i} of ${n}`);
  }
}

function leftovers(): string[] {
  return readdirSync(parent);
}

/** Random events: data batches (some empty, some large, some with timestamps incl. NaN), watermarks, status. */
function randomEvents(rng: Rng, n: number): ChannelEvent[] {
  const out: ChannelEvent[] = [];
  let wm = 0;
  for (let i = 0; i < n; i++) {
    const r = rng.int(10);
    if (r === 0) out.push(watermarkEvent((wm += rng.int(1000))));
    else if (r === 1) out.push(rng.bool() ? IDLE_STATUS : ACTIVE_STATUS);
    else {
      const len = rng.int(8) === 0 ? 0 : rng.int(6) === 0 ? rng.range(200, 2000) : rng.range(1, 50);
      const batch: unknown[] = [];
      for (let j = 0; j < len; j++) {
        const k = rng.int(6);
        batch.push(
          k === 0 ? rng.int(1000)
          : k === 1 ? `s${rng.u32()}-ü€😀`
          : k === 2 ? { id: rng.u32(), tags: ['a', null, rng.bool()], nested: { x: rng.u32() / 7 } }
          : k === 3 ? 'x'.repeat(rng.range(300, 3000)) // larger than a small frame
          : k === 4 ? [rng.i64(), new Date(rng.int(2e12)), rng.bytes(rng.int(20))]
          : null,
        );
      }
      if (rng.bool(0.4)) {
        const ts = batch.map(() => (rng.int(5) === 0 ? NaN : rng.int(2e12)));
        out.push({ kind: 'data', batch, timestamps: ts });
      } else out.push({ kind: 'data', batch });
    }
  }
  return out;
}

test('nothing is visible before end-of-input; then everything in push order (no spill)', async () => {
  const ch = channel<number>({ spill: memorySpill });
  let wakes = 0;
  ch.onAvailable = () => wakes++;
  const events: ChannelEvent<number>[] = [
    { kind: 'data', batch: [1, 2, 3] },
    watermarkEvent(10),
    { kind: 'data', batch: [4], timestamps: [NaN] },
    IDLE_STATUS,
    ACTIVE_STATUS,
    { kind: 'data', batch: [] },
  ];
  for (const ev of events) {
    ch.push(ev);
    assert.is(ch.poll(), undefined);
    assert.ok(ch.external);
    assert.ok(ch.isAvailable);
  }
  assert.is(ch.bufferedRecords, 4);
  assert.is(wakes, 0);
  ch.push(END_OF_INPUT);
  assert.ok(wakes > 0, 'end-of-input wakes the consumer');
  const got = await drain(ch);
  assert.equal(got, [...events, END_OF_INPUT]);
  assert.is(got[0], events[0], 'events that stayed in memory are handed over as they are');
  assert.is(ch.spills, 0);
  assert.throws(() => ch.push({ kind: 'data', batch: [5] }), /after end-of-input/);
  await ch.dispose();
});

test('end-of-input alone: an empty input', async () => {
  const ch = channel({ spill: memorySpill, memoryBytes: 0 });
  ch.push(END_OF_INPUT);
  assert.equal(await drain(ch), [END_OF_INPUT]);
  await ch.released;
});

for (const [label, factory] of factories) {
  test(`${label}: tiny budgets spill several times and give the same events, in order, as in memory`, async () => {
    await forSeeds('blocking spill', 6, async (rng) => {
      const events = randomEvents(rng, rng.range(40, 200));
      const inMemory = channel({ spill: factory, memoryBytes: '1gb' });
      await produce(inMemory, events);
      const expected = await drain(inMemory);
      assert.is(inMemory.spills, 0);
      assert.equal(expected, [...events, END_OF_INPUT]);

      const budget = rng.pick([0, 256, 4096, 20_000]);
      const frameBytes = rng.pick([256, 1024, 32 * 1024]);
      const ch = channel({ spill: factory, memoryBytes: budget, frameBytes, readAheadBytes: rng.pick([1, 4096, 1 << 20]) });
      await produce(ch, events);
      const got = await drain(ch);
      assert.ok(ch.spills >= 3, `spilled ${ch.spills} times with a budget of ${budget}`);
      sameEvents(got, expected);
      await ch.released;
      assert.equal(leftovers(), [], 'no spill directory is left after reading');
    });
  });
}

test('binary rows with a schema: spilled and read back identical, timestamps kept', async () => {
  const rows = schema({ id: t.i64(), name: t.string(), score: t.f64(), extra: t.any().nullable() });
  await forSeeds('blocking rows', 4, async (rng) => {
    const events: ChannelEvent[] = [];
    for (let b = 0; b < 40; b++) {
      const batch = Array.from({ length: rng.range(0, 300) }, () => ({
        id: rng.int(1e9),
        name: rng.bool(0.1) ? 'y'.repeat(rng.range(500, 5000)) : `n${rng.u32()}`,
        score: rng.u32() / 3,
        extra: rng.bool() ? null : { k: [rng.int(9)] },
      }));
      if (rng.bool()) events.push({ kind: 'data', batch, timestamps: batch.map((_, i) => (i % 3 === 0 ? NaN : rng.int(2e12))) });
      else events.push({ kind: 'data', batch });
      if (b % 7 === 0) events.push(watermarkEvent(b * 100));
    }
    const ch = channel({ spill: runtimeSpill, schema: rows, memoryBytes: 2048, frameBytes: 1024 });
    await produce(ch, events);
    const got = await drain(ch);
    assert.ok(ch.spills >= 3);
    assert.equal(got, [...events, END_OF_INPUT]);
    await ch.released;
    assert.equal(leftovers(), []);
  });
});

test('isAvailable is false while a spill is in flight and memory is over budget; the listener fires', async () => {
  for (const [label, factory] of factories) {
    const ch = channel<number>({ spill: factory, memoryBytes: 1000 });
    const batch = Array.from({ length: 100 }, (_, i) => i * 1000); // ~300 bytes serialized
    const pushed: ChannelEvent<number>[] = [];
    let i = 0;
    while (ch.isAvailable) {
      assert.ok(i < 100, `${label}: never unavailable`);
      const ev: ChannelEvent<number> = { kind: 'data', batch, timestamps: batch.map((v) => v + i) };
      pushed.push(ev);
      ch.push(ev);
      i++;
    }
    assert.is(ch.spills, 1, `${label}: one spill started synchronously, still in flight`);
    let fired = 0;
    const available = new Promise<void>((r) =>
      ch.whenAvailable(() => {
        fired++;
        r();
      }),
    );
    assert.is(fired, 0);
    await hangGuard(available, 'the availability listener');
    assert.is(fired, 1);
    assert.ok(ch.isAvailable);
    assert.ok(ch.spills >= 2, `${label}: the part over budget was spilled once the first write was done`);
    let now = 0;
    ch.whenAvailable(() => now++);
    assert.is(now, 1, 'whenAvailable on an available channel calls at once');
    ch.push(END_OF_INPUT);
    assert.equal(await drain(ch), [...pushed, END_OF_INPUT]);
    await ch.released;
  }
  assert.equal(leftovers(), []);
});

test('dispose removes the spill (before end-of-input, after it, and half-way through reading)', async () => {
  const make = (): BlockingChannel<string> => channel<string>({ spill: runtimeSpill, memoryBytes: 64, frameBytes: 256, readAheadBytes: 1 });
  const events = Array.from({ length: 50 }, (_, i): ChannelEvent<string> => ({ kind: 'data', batch: [`record ${i}`, 'z'.repeat(i * 10)] }));

  const a = make();
  for (const ev of events) a.push(ev);
  await a.dispose();
  assert.ok(a.spills > 0);
  assert.equal(leftovers(), [], 'disposed before end-of-input');
  assert.throws(() => a.push(events[0]!), (e: unknown) => e instanceof SluiceError && /Map#0 -> Reduce#1/.test((e as Error).message));
  assert.throws(() => a.poll(), (e: unknown) => e instanceof SluiceError);
  await a.dispose(); // idempotent

  const b = make();
  await produce(b, events);
  await b.dispose();
  assert.equal(leftovers(), [], 'disposed after end-of-input, before reading');

  const c = make();
  await produce(c, events);
  let seen = 0;
  await new Promise<void>((resolve) => {
    c.onAvailable = () => {
      for (let ev = c.poll(); ev !== undefined; ev = c.poll()) seen++;
      if (seen > 0) resolve();
    };
    c.onAvailable();
  });
  assert.ok(seen > 0 && seen < events.length);
  await c.dispose();
  assert.equal(leftovers(), [], 'disposed half-way through reading');

  // a shared store: the channel deletes its own file and leaves the store open
  const store = await createMemorySpillStore();
  const d = channel<string>({ spill: store, memoryBytes: 64 });
  await produce(d, events);
  assert.is(store.stats.filesLive, 1);
  assert.equal(await drain(d), [...events, END_OF_INPUT]);
  await d.released;
  assert.is(store.stats.filesLive, 0);
  assert.is(store.stats.bytesLive, 0);
  assert.not.ok(store.closed);
  const e = channel<string>({ spill: store, memoryBytes: 64 });
  for (const ev of events) e.push(ev);
  await e.dispose();
  assert.is(store.stats.filesLive, 0);
  await store.close();
});

/** A store whose appends fail (or whose create fails), as a full disk would. */
function failingStore(what: 'create' | 'append'): SpillStore {
  const inner = createMemorySpillStore();
  return {
    kind: 'memory',
    location: 'memory:failing',
    get stats(): SpillStats {
      throw new Error('unused');
    },
    closed: false,
    async create(name) {
      if (what === 'create') throw new Error('no space left on device (create)');
      const w = await (await inner).create(name);
      return {
        name,
        location: w.location,
        byteLength: 0,
        batchCount: 0,
        append: () => Promise.reject(new Error('no space left on device')),
        appendAll: () => Promise.reject(new Error('no space left on device')),
        finish: () => w.finish(),
        abort: () => w.abort(),
      };
    },
    close: async () => (await inner).close(),
    [Symbol.asyncDispose]: async () => (await inner).close(),
  };
}

test('a failing spill store fails the channel with a SluiceError naming it; producer and consumer see it', async () => {
  for (const what of ['create', 'append'] as const) {
    const store = failingStore(what);
    const ch = channel<number>({ spill: store, memoryBytes: 100, description: 'Scan#2 -> Join#0' });
    const batch = Array.from({ length: 100 }, (_, i) => i);
    let thrown: unknown;
    try {
      for (let i = 0; i < 1000; i++) {
        if (!ch.isAvailable) await hangGuard(new Promise<void>((r) => ch.whenAvailable(r)), 'whenAvailable after a failure');
        ch.push({ kind: 'data', batch });
      }
    } catch (e) {
      thrown = e;
    }
    assert.instance(thrown, BlockingExchangeError);
    assert.instance(thrown, SluiceError);
    const err = thrown as BlockingExchangeError;
    assert.match(err.message, /blocking exchange Scan#2 -> Join#0/);
    assert.match(err.message, /no space left on device/);
    assert.is(err.channel, 'Scan#2 -> Join#0');
    assert.is(err.domain, 'external');
    assert.ok(err.cause instanceof Error);
    assert.throws(() => ch.poll(), (e: unknown) => e === thrown);
    await ch.dispose();
    await store.close();
  }

  // failing after end-of-input: the waiting consumer is woken and poll throws
  const store = failingStore('append');
  const ch = channel<number>({ spill: store, memoryBytes: 100 });
  ch.push({ kind: 'data', batch: Array.from({ length: 100 }, (_, i) => i) });
  ch.push(END_OF_INPUT);
  assert.is(ch.poll(), undefined);
  await hangGuard(new Promise<void>((r) => (ch.onAvailable = r)), 'waking the consumer on failure');
  assert.throws(() => ch.poll(), (e: unknown) => e instanceof BlockingExchangeError && /Map#0 -> Reduce#1/.test(e.message));
  await ch.dispose();
  await store.close();
});

test('a record that cannot be serialized fails the push that spills it, naming the channel', async () => {
  const ch = channel({ spill: memorySpill, memoryBytes: 0 });
  assert.throws(
    () => ch.push({ kind: 'data', batch: [1, () => 2] }),
    (e: unknown) => e instanceof BlockingExchangeError && e.domain === 'user' && /Map#0 -> Reduce#1/.test(e.message),
  );
  await ch.dispose();
});

test('options are checked', () => {
  assert.throws(() => channel({ spill: memorySpill, memoryBytes: 'lots' }), /memoryBytes/);
  assert.throws(() => channel({ spill: memorySpill, frameBytes: 100 }), /frameBytes/);
  assert.is(channel({ spill: memorySpill, memoryBytes: '2kb' }).memoryBytes, 2048);
});

test('no spill directory is left behind by the suite', () => {
  assert.equal(leftovers(), []);
});

test.after(() => {
  rmSync(parent, { recursive: true, force: true });
});

test.run();
