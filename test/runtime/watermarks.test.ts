// Tests event-time progress: the WatermarkStrategy generators (bounded out-of-orderness, monotonous,
// punctuated, custom, ingestion time, none), idleness with a manual clock, timestamp errors and their
// policies, the new channel events, and the WatermarkValve (multiple inputs, idle/active transitions,
// end of input) with a fast-check property against a reference model.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  InvalidTimestampError,
  InvalidWatermarkError,
  ManualClock,
  MAX_WATERMARK,
  MIN_WATERMARK,
  SluiceError,
  WatermarkStrategy,
  WatermarkValve,
  type WatermarkOutput,
  type WatermarkValveOptions,
} from '../../src/index.ts';
import { ACTIVE_STATUS, Channel, END_OF_INPUT, IDLE_STATUS, watermarkEvent } from '../../src/runtime/channel.ts';
import { SystemClock } from '../../src/runtime/clock.ts';

interface Ev {
  id: number;
  ts: number;
  mark?: boolean;
}

/** A WatermarkOutput that records `wm N` / `idle` / `active`. */
function recorder(): WatermarkOutput & { log: string[]; take(): string[] } {
  const log: string[] = [];
  return {
    log,
    emitWatermark: (t) => log.push(`wm ${t === MAX_WATERMARK ? 'MAX' : t}`),
    markIdle: () => log.push('idle'),
    markActive: () => log.push('active'),
    take: () => log.splice(0),
  };
}

/** A step of a strategy scenario: a batch of timestamps, a periodic tick, a clock move, end of input. */
type Step = { batch: number[] } | { tick: true } | { clock: number } | { end: true };

function runStrategy(strategy: WatermarkStrategy<Ev>, steps: Step[], clock = new ManualClock(0)): string[] {
  const w = strategy.createWatermarker({ clock, operator: 'Source: test', subtask: 0 });
  const out = recorder();
  let id = 0;
  for (const s of steps) {
    if ('batch' in s) {
      const res = w.onBatch(s.batch.map((ts) => ({ id: id++, ts })), out);
      assert.equal(res.timestamps, s.batch);
    } else if ('tick' in s) w.onPeriodicEmit(out);
    else if ('clock' in s) clock.advance(s.clock);
    else w.onEndOfInput(out);
  }
  return out.log;
}

const byTs = (e: Ev) => e.ts;

const strategyCases: { name: string; strategy: () => WatermarkStrategy<Ev>; steps: Step[]; expect: string[] }[] = [
  {
    name: 'bounded 5 ms: max − 5 − 1, periodic only, never backwards, MAX at end',
    strategy: () => WatermarkStrategy.forBoundedOutOfOrderness<Ev>(5).withTimestampAssigner(byTs),
    steps: [{ tick: true }, { batch: [10, 7, 12] }, { tick: true }, { batch: [3] }, { tick: true }, { batch: [20, 19] }, { tick: true }, { tick: true }, { end: true }, { tick: true }],
    expect: ['wm 6', 'wm 14', 'wm MAX'],
  },
  {
    name: 'bounded 0 ms behaves as monotonous',
    strategy: () => WatermarkStrategy.forBoundedOutOfOrderness<Ev>(0).withTimestampAssigner(byTs),
    steps: [{ batch: [1, 5, 3] }, { tick: true }],
    expect: ['wm 4'],
  },
  {
    name: 'bounded: first emission before any record is MIN_WATERMARK, hence silent',
    strategy: () => WatermarkStrategy.forBoundedOutOfOrderness<Ev>(1_000).withTimestampAssigner(byTs),
    steps: [{ tick: true }, { tick: true }, { batch: [MIN_WATERMARK + 1] }, { tick: true }, { batch: [5_000] }, { tick: true }],
    expect: ['wm 3999'],
  },
  {
    name: 'monotonous: max − 1',
    strategy: () => WatermarkStrategy.forMonotonousTimestamps<Ev>().withTimestampAssigner(byTs),
    steps: [{ batch: [1, 2, 3] }, { tick: true }, { batch: [3] }, { tick: true }, { batch: [4] }, { tick: true }, { end: true }],
    expect: ['wm 2', 'wm 3', 'wm MAX'],
  },
  {
    name: 'monotonous: negative timestamps (before 1970) are fine',
    strategy: () => WatermarkStrategy.forMonotonousTimestamps<Ev>().withTimestampAssigner(byTs),
    steps: [{ batch: [-100, -50] }, { tick: true }],
    expect: ['wm -51'],
  },
  {
    name: 'punctuated: emits on the marked record, within the batch, nothing periodic',
    strategy: () => WatermarkStrategy.forPunctuated<Ev>((e, ts) => (e.id % 2 === 1 ? ts : undefined)).withTimestampAssigner(byTs),
    steps: [{ batch: [10, 11, 12, 13] }, { tick: true }, { batch: [9, 8] }, { batch: [30, 40] }],
    expect: ['wm 11', 'wm 13', 'wm 40'],
  },
  {
    name: 'custom generator: periodic emission of a fixed lag behind the last record',
    strategy: () =>
      WatermarkStrategy.forGenerator<Ev>(() => {
        let last = MIN_WATERMARK;
        return { onEvent: (_e, ts) => void (last = ts), onPeriodicEmit: (o) => o.emitWatermark(last - 100) };
      }).withTimestampAssigner(byTs),
    steps: [{ batch: [1_000, 500] }, { tick: true }, { batch: [2_000] }, { tick: true }],
    expect: ['wm 400', 'wm 1900'],
  },
  {
    name: 'no watermarks: nothing but MAX at end',
    strategy: () => WatermarkStrategy.noWatermarks<Ev>().withTimestampAssigner(byTs),
    steps: [{ batch: [1, 2] }, { tick: true }, { end: true }],
    expect: ['wm MAX'],
  },
  {
    name: 'idleness: silent for the timeout → idle once; next record → active; watermark advances after',
    strategy: () => WatermarkStrategy.forBoundedOutOfOrderness<Ev>(0).withTimestampAssigner(byTs).withIdleness(100),
    steps: [
      { batch: [10] }, { tick: true }, // wm 9
      { clock: 99 }, { tick: true }, // not yet idle
      { clock: 1 }, { tick: true }, { tick: true }, // idle (once)
      { clock: 500 }, { tick: true },
      { batch: [5] }, { tick: true }, // active again; 5 does not advance the watermark
      { batch: [20] }, { tick: true }, // wm 19
      { clock: 100 }, { tick: true }, // idle again
      { end: true }, // end of input: active, MAX
    ],
    expect: ['wm 9', 'idle', 'active', 'wm 19', 'idle', 'active', 'wm MAX'],
  },
  {
    name: 'idleness: a split that never gets a record goes idle after the timeout',
    strategy: () => WatermarkStrategy.forMonotonousTimestamps<Ev>().withTimestampAssigner(byTs).withIdleness(50),
    steps: [{ tick: true }, { clock: 49 }, { tick: true }, { clock: 1 }, { tick: true }],
    expect: ['idle'],
  },
  {
    name: 'idleness: a generator that marks itself idle is made active by the next record',
    strategy: () =>
      WatermarkStrategy.forGenerator<Ev>(() => ({ onEvent: () => {}, onPeriodicEmit: (o) => o.markIdle() })).withTimestampAssigner(byTs),
    steps: [{ tick: true }, { tick: true }, { batch: [1] }, { tick: true }],
    expect: ['idle', 'active', 'idle'],
  },
];

for (const c of strategyCases) {
  test(`strategy: ${c.name}`, () => {
    assert.equal(runStrategy(c.strategy(), c.steps), c.expect);
  });
}

test('strategy: ingestion time stamps records with the clock and follows it', () => {
  const clock = new ManualClock(1_000);
  const w = WatermarkStrategy.forIngestionTime<Ev>().withAutoWatermarkInterval(50).createWatermarker({ clock, operator: 'Source: s', subtask: 1 });
  assert.is(w.intervalMs, 50);
  const out = recorder();
  assert.equal(w.onBatch([{ id: 0, ts: 0 }, { id: 1, ts: 0 }], out).timestamps, [1_000, 1_000]);
  w.onPeriodicEmit(out);
  clock.advance(50);
  assert.equal(w.onBatch([{ id: 2, ts: 0 }], out).timestamps, [1_050]);
  w.onPeriodicEmit(out);
  w.onPeriodicEmit(out);
  assert.equal(out.take(), ['wm 999', 'wm 1049']);
});

test('strategy: timestamps from the source when there is no assigner; the assigner sees them', () => {
  const clock = new ManualClock();
  const ctx = { clock, operator: 'Source: s', subtask: 0 };
  const out = recorder();
  const recs = [{ id: 0, ts: 0 }, { id: 1, ts: 0 }];
  const w = WatermarkStrategy.forMonotonousTimestamps<Ev>().createWatermarker(ctx);
  assert.equal(w.onBatch(recs, out, [7, 8]).timestamps, [7, 8]);
  const seen: (number | undefined)[] = [];
  const w2 = WatermarkStrategy.forMonotonousTimestamps<Ev>().withTimestampAssigner((_e, r) => (seen.push(r), (r ?? 0) * 2)).createWatermarker(ctx);
  assert.equal(w2.onBatch(recs, out, [7, undefined]).timestamps, [14, 0]);
  assert.equal(seen, [7, undefined]);
  // no assigner and no source timestamp: an error with a watermark strategy, MIN_WATERMARK without
  assert.throws(() => WatermarkStrategy.forMonotonousTimestamps<Ev>().createWatermarker(ctx).onBatch(recs, out), (e: unknown) => e instanceof InvalidTimestampError && /no timestamp assigner/.test(e.message));
  assert.equal(WatermarkStrategy.noWatermarks<Ev>().createWatermarker(ctx).onBatch(recs, out).timestamps, [MIN_WATERMARK, MIN_WATERMARK]);
  // the same batch object comes back when nothing is dropped
  assert.ok(w.onBatch(recs, out, [9, 9]).records === recs);
});

const badTimestamps: { name: string; assign: (e: Ev) => number; pattern: RegExp }[] = [
  { name: 'throws', assign: () => { throw new Error('no date field'); }, pattern: /assigner threw: no date field/ },
  { name: 'NaN', assign: () => NaN, pattern: /got NaN/ },
  { name: 'Infinity', assign: () => Infinity, pattern: /got Infinity/ },
  { name: 'a fraction', assign: (e) => e.ts + 0.5, pattern: /got 20.5/ },
  { name: 'a string', assign: () => '20' as unknown as number, pattern: /got "20"/ },
  { name: 'undefined', assign: () => undefined as unknown as number, pattern: /got undefined/ },
  { name: 'beyond the safe range', assign: () => 2 ** 60, pattern: /safe integer/ },
];

for (const c of badTimestamps) {
  test(`strategy: an assigner that ${c.name === 'throws' ? 'throws' : `returns ${c.name}`} → InvalidTimestampError naming operator, subtask, record`, () => {
    const w = WatermarkStrategy.forBoundedOutOfOrderness<Ev>(10)
      .withTimestampAssigner((e) => (e.id === 1 ? c.assign(e) : e.ts))
      .createWatermarker({ clock: new ManualClock(), operator: 'Source: orders', subtask: 3 });
    try {
      w.onBatch([{ id: 0, ts: 10 }, { id: 1, ts: 20 }], recorder());
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, InvalidTimestampError);
      assert.instance(e, SluiceError);
      const err = e as InvalidTimestampError;
      assert.is(err.domain, 'user');
      assert.equal(err.context, { operator: 'Source: orders', subtask: 3, recordIndex: 1 });
      assert.equal(err.record, { id: 1, ts: 20 });
      assert.match(err.message, c.pattern);
      assert.match(err.message, /\{"id":1,"ts":20\}/);
      assert.match(err.message, /operator Source: orders, subtask 3, record 1/);
      if (c.name === 'throws') assert.instance(err.cause, Error);
    }
  });
}

test('strategy: invalid-timestamp policies drop or side-output the record and keep the rest aligned', () => {
  const recs: Ev[] = [0, 1, 2, 3, 4].map((id) => ({ id, ts: id * 10 }));
  const assign = (e: Ev) => (e.id % 2 === 1 ? NaN : e.ts);
  const ctx = { clock: new ManualClock(), operator: 'Source: s', subtask: 0 };
  const dropped = WatermarkStrategy.forMonotonousTimestamps<Ev>().withTimestampAssigner(assign).withInvalidTimestamps('drop').createWatermarker(ctx);
  const out = recorder();
  const r = dropped.onBatch(recs, out);
  assert.equal(r.records.map((e) => e.id), [0, 2, 4]);
  assert.equal(r.timestamps, [0, 20, 40]);
  dropped.onPeriodicEmit(out);
  assert.equal(out.take(), ['wm 39']);

  const side: [number, string][] = [];
  const so = WatermarkStrategy.forMonotonousTimestamps<Ev>()
    .withTimestampAssigner(assign)
    .withInvalidTimestamps({ sideOutput: (rec, err) => side.push([rec.id, err.context.recordIndex === rec.id ? 'ok' : 'bad index']) })
    .createWatermarker(ctx);
  assert.equal(so.onBatch(recs, out).timestamps, [0, 20, 40]);
  assert.equal(side, [[1, 'ok'], [3, 'ok']]);
  assert.throws(() => WatermarkStrategy.noWatermarks<Ev>().withInvalidTimestamps('skip' as 'drop'), /withInvalidTimestamps/);
});

test('strategy: a generator emitting a non-integer watermark → InvalidWatermarkError', () => {
  const w = WatermarkStrategy.forGenerator<Ev>(() => ({ onEvent: () => {}, onPeriodicEmit: (o) => o.emitWatermark(1.5) }))
    .withTimestampAssigner(byTs)
    .createWatermarker({ clock: new ManualClock(), operator: 'Source: g', subtask: 0 });
  assert.throws(() => w.onPeriodicEmit(recorder()), (e: unknown) => e instanceof InvalidWatermarkError && /operator Source: g/.test(e.message));
});

test('strategy: builder validation, immutability, interval, description', () => {
  assert.throws(() => WatermarkStrategy.forBoundedOutOfOrderness(-1), RangeError);
  assert.throws(() => WatermarkStrategy.forBoundedOutOfOrderness(1.5), RangeError);
  assert.throws(() => WatermarkStrategy.noWatermarks().withIdleness(0), RangeError);
  assert.throws(() => WatermarkStrategy.noWatermarks().withAutoWatermarkInterval(-5), RangeError);
  assert.throws(() => WatermarkStrategy.noWatermarks().withTimestampAssigner(5 as unknown as () => number), TypeError);
  const base = WatermarkStrategy.forBoundedOutOfOrderness<Ev>(5_000);
  const idle = base.withIdleness(60_000).withTimestampAssigner(byTs);
  assert.is(base.idleTimeoutMs, undefined);
  assert.is(idle.idleTimeoutMs, 60_000);
  assert.is(base.autoWatermarkIntervalMs, 200);
  assert.is(idle.withAutoWatermarkInterval(1_000).autoWatermarkIntervalMs, 1_000);
  assert.is(idle.toString(), 'boundedOutOfOrderness(5000ms), timestamp assigner, idle after 60000ms');
  assert.ok(base.generatesWatermarks);
  assert.not.ok(WatermarkStrategy.noWatermarks().generatesWatermarks);
  const ctx = { clock: new ManualClock(), operator: 's', subtask: 0 };
  assert.is(WatermarkStrategy.noWatermarks().createWatermarker(ctx).intervalMs, 0);
  assert.is(base.createWatermarker(ctx).intervalMs, 200);
  assert.is(base.withAutoWatermarkInterval(0).createWatermarker(ctx).intervalMs, 0);
});

test('clock: manual clock runs due callbacks in time order, including ones scheduled while running', () => {
  const clock = new ManualClock(100);
  const log: string[] = [];
  clock.schedule(150, (now) => log.push(`b@${now}`));
  clock.schedule(120, () => {
    log.push('a');
    clock.schedule(130, () => log.push('a2'));
  });
  const cancel = clock.schedule(140, () => log.push('cancelled'));
  clock.schedule(300, () => log.push('later'));
  cancel();
  clock.advance(100);
  assert.equal(log, ['a', 'b@200', 'a2']);
  assert.is(clock.pendingCount, 1);
  assert.throws(() => clock.setTime(150), /cannot go back/);
  clock.setTime(300);
  assert.equal(log.at(-1), 'later');
});

test('clock: system clock is integral and never goes back', async () => {
  let t = 1_000.7;
  const clock = new SystemClock(() => t);
  assert.is(clock.now(), 1_000);
  t = 900;
  assert.is(clock.now(), 1_000);
  t = 1_010;
  const fired = await new Promise<number>((resolve) => clock.schedule(1_005, resolve));
  assert.is(fired, 1_010);
});

// ---- channel events ----

test('channel: watermark and status events travel in order with data; nothing after end-of-input', () => {
  const ch = new Channel<number>(0, 't');
  ch.push({ kind: 'data', batch: [1, 2] });
  ch.push(watermarkEvent(5));
  ch.push(IDLE_STATUS);
  ch.push(ACTIVE_STATUS);
  ch.push({ kind: 'data', batch: [3] });
  assert.is(ch.bufferedRecords, 3);
  ch.push(END_OF_INPUT);
  assert.throws(() => ch.push(watermarkEvent(6)), /after end-of-input/);
  const kinds: string[] = [];
  for (let ev = ch.poll(); ev; ev = ch.poll()) {
    kinds.push(ev.kind === 'watermark' ? `wm ${ev.timestamp}` : ev.kind === 'watermark-status' ? ev.status : ev.kind);
  }
  assert.equal(kinds, ['data', 'wm 5', 'idle', 'active', 'data', 'end-of-input']);
  assert.is(ch.bufferedRecords, 0);
});

// ---- the valve ----

/** A valve step: `[channel, watermark]`, `[channel, 'idle' | 'active' | 'end']`. */
type VStep = [number, number | 'idle' | 'active' | 'end'];

function runValve(channels: number, steps: VStep[], options?: WatermarkValveOptions): string[] {
  const log: string[] = [];
  const valve = new WatermarkValve(channels, {
    emitWatermark: (t) => log.push(`wm ${t === MAX_WATERMARK ? 'MAX' : t}`),
    emitStatus: (s) => log.push(s),
  }, options);
  for (const [ch, what] of steps) {
    if (typeof what === 'number') valve.input(ch, watermarkEvent(what));
    else if (what === 'end') valve.input(ch, END_OF_INPUT);
    else valve.input(ch, what === 'idle' ? IDLE_STATUS : ACTIVE_STATUS);
  }
  return log;
}

const valveCases: { name: string; channels: number; steps: VStep[]; expect: string[]; options?: WatermarkValveOptions }[] = [
  { name: 'one channel passes advancing watermarks through', channels: 1, steps: [[0, 5], [0, 5], [0, 3], [0, 9]], expect: ['wm 5', 'wm 9'] },
  { name: 'minimum over channels, emitted only when it advances', channels: 2, steps: [[0, 10], [1, 7], [1, 12], [0, 15], [0, 16], [1, 20]], expect: ['wm 7', 'wm 10', 'wm 12', 'wm 16'] },
  { name: 'a regressing watermark on a channel is ignored', channels: 2, steps: [[0, 10], [1, 10], [0, 4], [1, 11], [0, 11]], expect: ['wm 10', 'wm 11'] },
  { name: 'three channels: the minimum moves only with the slowest', channels: 3, steps: [[0, 5], [1, 6], [2, 1], [0, 8], [2, 7], [1, 9]], expect: ['wm 1', 'wm 6', 'wm 7'] },
  { name: 'an idle channel leaves the minimum, which may advance', channels: 2, steps: [[0, 10], [1, 3], [1, 'idle'], [0, 12]], expect: ['wm 3', 'wm 10', 'wm 12'] },
  { name: 'idle before any watermark: the other channel leads alone', channels: 2, steps: [[1, 'idle'], [0, 4]], expect: ['wm 4'] },
  {
    name: 'all idle (advance-to-max): flush the greatest channel watermark, then idle; reactivation emits active',
    channels: 2,
    steps: [[0, 10], [1, 20], [1, 'idle'], [0, 'idle'], [1, 'idle'], [0, 'active'], [0, 15], [1, 'active'], [0, 30]],
    expect: ['wm 10', 'wm 20', 'idle', 'active'],
  },
  {
    name: 'all idle (hold): keep the watermark, then idle; the channel back leads from its own watermark',
    channels: 2,
    steps: [[0, 10], [1, 20], [1, 'idle'], [0, 'idle'], [1, 'active'], [1, 25]],
    options: { onAllIdle: 'hold' },
    expect: ['wm 10', 'idle', 'active', 'wm 20', 'wm 25'],
  },
  {
    name: 'all idle (hold): the first channel back, ahead of the output, leads',
    channels: 2,
    steps: [[0, 10], [1, 10], [0, 'idle'], [1, 'idle'], [0, 30], [0, 'active']],
    options: { onAllIdle: 'hold' },
    expect: ['wm 10', 'idle', 'active', 'wm 30'],
  },
  {
    name: 'reactivation below the output does not move it back; the output holds until the channel catches up',
    channels: 2,
    steps: [[0, 5], [1, 5], [1, 'idle'], [0, 20], [1, 'active'], [0, 30], [1, 8], [1, 25], [1, 40]],
    expect: ['wm 5', 'wm 20', 'wm 25', 'wm 30'],
  },
  {
    name: 'a watermark on an idle channel is recorded but does not activate it',
    channels: 2,
    steps: [[0, 5], [1, 5], [1, 'idle'], [1, 50], [0, 10], [1, 'active'], [0, 60]],
    expect: ['wm 5', 'wm 10', 'wm 50'],
  },
  {
    name: 'repeated status events are no-ops',
    channels: 2,
    steps: [[0, 'active'], [0, 'idle'], [0, 'idle'], [1, 3], [0, 'active'], [0, 'active']],
    expect: ['wm 3'],
  },
  {
    name: 'end of input: the channel stops holding back; all ended → MAX',
    channels: 3,
    steps: [[0, 5], [1, 7], [2, 9], [0, 'end'], [1, 'end'], [2, 'end']],
    expect: ['wm 5', 'wm 7', 'wm 9', 'wm MAX'],
  },
  {
    name: 'end of input on an idle channel activates it (and the operator)',
    channels: 2,
    steps: [[0, 4], [1, 'idle'], [0, 'idle'], [1, 'end']],
    options: { onAllIdle: 'hold' },
    expect: ['wm 4', 'idle', 'active', 'wm MAX'],
  },
];

for (const c of valveCases) {
  test(`valve: ${c.name}`, () => {
    assert.equal(runValve(c.channels, c.steps, c.options), c.expect);
  });
}

test('valve: state accessors; misuse is an error', () => {
  const valve = new WatermarkValve(2, { emitWatermark: () => {}, emitStatus: () => {} });
  assert.is(valve.currentWatermark, MIN_WATERMARK);
  valve.inputWatermark(0, 3);
  valve.inputStatus(1, 'idle');
  assert.is(valve.currentWatermark, 3);
  assert.is(valve.channelWatermark(0), 3);
  assert.is(valve.channelStatus(1), 'idle');
  assert.not.ok(valve.isIdle);
  assert.not.ok(valve.input(0, { kind: 'data', batch: [] }));
  valve.endOfInput(0);
  assert.ok(valve.channelEnded(0));
  assert.throws(() => valve.inputWatermark(0, 9), /after end-of-input/);
  assert.throws(() => valve.inputWatermark(2, 9), /no channel 2/);
  assert.throws(() => valve.inputWatermark(1, 1.5), /safe integer/);
  assert.throws(() => new WatermarkValve(0, { emitWatermark: () => {}, emitStatus: () => {} }), RangeError);
});

type Op = { ch: number; op: 'wm'; delta: number } | { ch: number; op: 'idle' | 'active' | 'end' };

for (const onAllIdle of ['advance-to-max', 'hold'] as const) {
  test(`valve property (${onAllIdle}): output strictly increasing, = min over active channels at every advance, idle iff all idle`, () => {
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ ch: fc.nat(4), op: fc.constant('wm' as const), delta: fc.integer({ min: -5, max: 20 }) }) },
      { weight: 2, arbitrary: fc.record({ ch: fc.nat(4), op: fc.constantFrom('idle' as const, 'active' as const) }) },
      { weight: 1, arbitrary: fc.record({ ch: fc.nat(4), op: fc.constant('end' as const) }) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(opArb, { maxLength: 80 }), (n, ops) => {
        // the reference model
        const wm = new Array<number>(n).fill(MIN_WATERMARK);
        const active = new Array<boolean>(n).fill(true);
        const ended = new Array<boolean>(n).fill(false);
        let out = MIN_WATERMARK;
        let idle = false;
        const emitted: number[] = [];
        const statuses: string[] = [];
        const valve = new WatermarkValve(n, { emitWatermark: (t) => emitted.push(t), emitStatus: (s) => statuses.push(s) }, { onAllIdle });
        for (const o of ops) {
          const ch = o.ch % n;
          if (ended[ch]) continue;
          emitted.length = 0;
          statuses.length = 0;
          const wasAllIdle = active.every((a) => !a);
          if (o.op === 'wm') {
            const t = Math.max(0, wm[ch] === MIN_WATERMARK ? o.delta : wm[ch]! + o.delta);
            valve.inputWatermark(ch, t);
            if (t > wm[ch]!) wm[ch] = t;
          } else if (o.op === 'end') {
            valve.endOfInput(ch);
            wm[ch] = MAX_WATERMARK;
            active[ch] = true;
            ended[ch] = true;
          } else {
            valve.inputStatus(ch, o.op);
            active[ch] = o.op === 'active';
          }
          const allIdle = active.every((a) => !a);
          const activeWms = wm.filter((_, i) => active[i]);
          // statuses: exactly the transitions
          const expectStatus = !wasAllIdle && allIdle ? ['idle'] : wasAllIdle && !allIdle ? ['active'] : [];
          if (statuses.join() !== expectStatus.join()) return false;
          idle = allIdle;
          if (valve.isIdle !== idle) return false;
          // at most one watermark per event, strictly above the last output
          if (emitted.length > 1) return false;
          const target = allIdle ? (onAllIdle === 'advance-to-max' && !wasAllIdle ? Math.max(...wm) : out) : Math.min(...activeWms);
          const next = Math.max(out, target);
          if (next > out) {
            if (emitted.length !== 1 || emitted[0] !== next) return false;
            out = next;
          } else if (emitted.length !== 0) return false;
          if (valve.currentWatermark !== out) return false;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });
}

test.run();
