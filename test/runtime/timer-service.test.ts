// Tests the timer service: event-time firing order (timestamp, then a history-independent tie-break),
// deduplication per (key, namespace, timestamp), deletion, timers registered while firing, key-group
// snapshot/restore/clear, processing time with a manual clock (and a mailbox hook), plus a fast-check
// property against a sorted-array reference.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { ManualClock, TimerService, hashJsKey, keyGroupOf, type Timer } from '../../src/index.ts';
import { canonicalId } from '../../src/runtime/timer-service.ts';

const MAX_P = 128;
const kgOf = (k: unknown) => keyGroupOf(hashJsKey(k as string), MAX_P);

function service<K = string, N = unknown>(opts: Partial<ConstructorParameters<typeof TimerService<K, N>>[0]> = {}): TimerService<K, N> {
  return new TimerService<K, N>({ keyGroupOf: kgOf as (k: K) => number, ...opts });
}

const show = (t: Timer<unknown, unknown>) => `${String(t.key)}@${t.timestamp}${t.namespace === null ? '' : `/${JSON.stringify(t.namespace)}`}`;

function collect<K, N>(ts: TimerService<K, N>, wm: number): string[] {
  const out: string[] = [];
  ts.advanceWatermark(wm, (t) => out.push(show(t)));
  return out;
}

const orderCases: { name: string; register: [string, number][]; watermarks: number[]; expect: string[][] }[] = [
  { name: 'fires in timestamp order up to the watermark', register: [['a', 30], ['b', 10], ['c', 20], ['d', 40]], watermarks: [25, 39, 40], expect: [['b@10', 'c@20'], ['a@30'], ['d@40']] },
  { name: 'a watermark equal to the timestamp fires it', register: [['a', 5]], watermarks: [4, 5], expect: [[], ['a@5']] },
  { name: 'negative and MIN-adjacent timestamps', register: [['a', -10], ['b', Number.MIN_SAFE_INTEGER + 1], ['c', 0]], watermarks: [-1, 0], expect: [['b@-9007199254740990', 'a@-10'], ['c@0']] },
  { name: 'a watermark below the current one changes nothing', register: [['a', 10], ['b', 20]], watermarks: [15, 12, 20], expect: [['a@10'], [], ['b@20']] },
];

for (const c of orderCases) {
  test(`timers: ${c.name}`, () => {
    const ts = service();
    for (const [k, t] of c.register) ts.registerEventTimeTimer(k, t);
    assert.equal(c.watermarks.map((w) => collect(ts, w)), c.expect);
    assert.is(ts.eventTimeTimers, 0);
  });
}

test('timers: equal timestamps fire in the same order whatever the registration order', () => {
  const keys = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8'];
  const orders = new Set<string>();
  for (let seed = 0; seed < 20; seed++) {
    const shuffled = [...keys].sort((a, b) => ((hashJsKey(a + seed) >>> 0) % 97) - ((hashJsKey(b + seed) >>> 0) % 97));
    const ts = service();
    for (const k of shuffled) ts.registerEventTimeTimer(k, 100);
    const fired: Timer<string, unknown>[] = [];
    ts.advanceWatermark(100, (t) => fired.push(t));
    for (let i = 1; i < fired.length; i++) assert.ok(fired[i - 1]!.keyGroup <= fired[i]!.keyGroup, 'by key group first');
    orders.add(fired.map((t) => t.key).join());
  }
  assert.is(orders.size, 1);
});

test('timers: deduplicated per (key, namespace, timestamp); composite keys and object namespaces by content', () => {
  const ts = service<unknown, unknown>();
  ts.registerEventTimeTimer('a', 10);
  ts.registerEventTimeTimer('a', 10);
  ts.registerEventTimeTimer('a', 10, { start: 0, end: 10 });
  ts.registerEventTimeTimer('a', 10, { end: 10, start: 0 }); // same window, other property order
  ts.registerEventTimeTimer('a', 11);
  ts.registerEventTimeTimer(['a', 1], 10);
  ts.registerEventTimeTimer(['a', 1], 10);
  ts.registerEventTimeTimer(-0, 10);
  ts.registerEventTimeTimer(0, 10);
  ts.registerEventTimeTimer('0', 10); // a string is not the number
  ts.registerProcessingTimeTimer('a', 10); // another domain
  assert.is(ts.eventTimeTimers, 6);
  assert.is(ts.processingTimeTimers, 1);
  assert.is(ts.advanceWatermark(20, () => {}), 6);
  // the canonical encoding is injective on the shapes that could be confused
  const ids = ['ab', ['a', 'b'], ['ab'], [['a'], 'b'], 1, '1', [1], true, 'true', null, [], {}, { a: 1 }, { a: '1' }, new Uint8Array([1, 2]), [1, 2], new Date(5), 5n];
  assert.is(new Set(ids.map(canonicalId)).size, ids.length);
  assert.throws(() => ts.registerEventTimeTimer('a', 1, new Map() as unknown), /plain objects/);
  assert.throws(() => ts.registerEventTimeTimer('a', 1.5), /safe integer/);
  assert.throws(() => ts.registerEventTimeTimer('a', NaN), /safe integer/);
});

test('timers: delete before firing, delete of an absent timer, delete from a callback', () => {
  const ts = service();
  ts.registerEventTimeTimer('a', 10);
  ts.registerEventTimeTimer('b', 20);
  ts.registerEventTimeTimer('c', 30);
  ts.registerEventTimeTimer('c', 40, 'ns');
  ts.deleteEventTimeTimer('a', 10);
  ts.deleteEventTimeTimer('a', 10); // again: no-op
  ts.deleteEventTimeTimer('zzz', 10);
  ts.deleteEventTimeTimer('c', 40); // wrong namespace: no-op
  assert.is(ts.nextEventTime(), 20);
  const out: string[] = [];
  ts.advanceWatermark(100, (t) => {
    out.push(show(t));
    if (t.key === 'b') ts.deleteEventTimeTimer('c', 30); // a later, due timer
  });
  assert.equal(out, ['b@20', 'c@40/"ns"']);
});

test('timers: registered during firing for ≤ watermark fire in the same advance, later ones wait', () => {
  const ts = service();
  ts.registerEventTimeTimer('a', 10);
  const out: string[] = [];
  const fire = (t: Timer<string, unknown>) => {
    out.push(show(t));
    if (t.key === 'a' && t.timestamp === 10) {
      ts.registerEventTimeTimer('b', 5); // in the past: fires now, next
      ts.registerEventTimeTimer('c', 15); // due: fires in this advance
      ts.registerEventTimeTimer('d', 50); // not due
    }
    if (t.key === 'c') ts.registerEventTimeTimer('a', 20); // a new timer for the same key
  };
  assert.is(ts.advanceWatermark(20, fire), 4);
  assert.equal(out, ['a@10', 'b@5', 'c@15', 'a@20']);
  assert.equal(ts.nextEventTime(), 50);
  // outside firing, a timer for a passed time waits for the next advance
  ts.registerEventTimeTimer('late', 1);
  assert.equal(collect(ts, 20), ['late@1']);
  assert.throws(() => ts.advanceWatermark(60, () => ts.advanceWatermark(70, () => {})), /re-entrantly/);
});

test('timers: snapshot per key group in firing order; restore elsewhere fires identically; clear', () => {
  const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
  const a = service<string, string | null>();
  for (const [i, k] of keys.entries()) {
    a.registerEventTimeTimer(k, 100 + (i % 7));
    a.registerEventTimeTimer(k, 200, 'w');
    if (i % 3 === 0) a.registerProcessingTimeTimer(k, 1_000 + i);
  }
  const groups = a.keyGroups();
  assert.ok(groups.length > 10);
  assert.equal(groups, [...new Set(keys.map(kgOf))].sort((x, y) => x - y));
  const snaps = groups.map((g) => a.snapshot(g));
  for (const s of snaps) {
    for (const t of [...s.eventTime, ...s.processingTime]) assert.is(kgOf(t.key), s.keyGroup);
    for (let i = 1; i < s.eventTime.length; i++) assert.ok(s.eventTime[i - 1]!.timestamp <= s.eventTime[i]!.timestamp);
  }
  assert.equal(a.snapshot(MAX_P + 5), { keyGroup: MAX_P + 5, eventTime: [], processingTime: [] });
  // snapshots are plain data (JSON round trip) and restore in any group order
  const b = service<string, string | null>();
  for (const s of [...snaps].reverse()) b.restore(JSON.parse(JSON.stringify(s)));
  b.restore(snaps[0]!); // twice: deduplicated
  assert.is(b.eventTimeTimers, a.eventTimeTimers);
  assert.is(b.processingTimeTimers, a.processingTimeTimers);
  const fa: string[] = [], fb: string[] = [];
  a.advanceWatermark(300, (t) => fa.push(show(t)));
  b.advanceWatermark(300, (t) => fb.push(show(t)));
  assert.equal(fb, fa);
  const pa: string[] = [], pb: string[] = [];
  a.advanceProcessingTime(2_000, (t) => pa.push(show(t)));
  b.advanceProcessingTime(2_000, (t) => pb.push(show(t)));
  assert.equal(pb, pa);
  assert.is(pa.length, 14);
  // rescaling: a subtask hands a key group away
  const c = service<string, string | null>();
  for (const s of snaps) c.restore(s);
  c.clearKeyGroup(groups[0]!);
  assert.not.ok(c.keyGroups().includes(groups[0]!));
  assert.is(c.eventTimeTimers, 80 - snaps[0]!.eventTime.length);
  assert.is(c.processingTimeTimers, 14 - snaps[0]!.processingTime.length);
});

test('timers: processing time fires by the manual clock, earliest first, with the clock re-armed', () => {
  const clock = new ManualClock(0);
  const out: string[] = [];
  const ts = service<string, unknown>({ clock, onProcessingTime: (t) => out.push(`${show(t)} at ${clock.now()}`) });
  ts.registerProcessingTimeTimer('a', 100);
  ts.registerProcessingTimeTimer('b', 50);
  ts.registerProcessingTimeTimer('b', 50);
  ts.registerProcessingTimeTimer('c', 70);
  ts.deleteProcessingTimeTimer('c', 70);
  assert.is(ts.currentProcessingTime(), 0);
  clock.advance(60);
  assert.equal(out.splice(0), ['b@50 at 60']);
  clock.advance(20); // the deleted timer (70) fires nothing
  assert.equal(out, []);
  clock.advance(20);
  assert.equal(out.splice(0), ['a@100 at 100']);
  // registration from a processing-time callback, due now and later
  const ts2 = service<string, unknown>({
    clock,
    onProcessingTime: (t) => {
      out.push(show(t));
      if (t.key === 'x') {
        ts2.registerProcessingTimeTimer('y', clock.now());
        ts2.registerProcessingTimeTimer('z', clock.now() + 10);
      }
    },
  });
  ts2.registerProcessingTimeTimer('x', 110);
  clock.setTime(115);
  assert.equal(out.splice(0), ['x@110', 'y@115']);
  clock.advance(10);
  assert.equal(out.splice(0), ['z@125']);
  // a mailbox delays firing until the executor runs it; close stops listening
  const mailbox: (() => void)[] = [];
  const ts3 = service<string, unknown>({ clock, deliver: (run) => mailbox.push(run), onProcessingTime: (t) => out.push(show(t)) });
  ts3.registerProcessingTimeTimer('m', 130);
  ts3.registerProcessingTimeTimer('n', 200);
  clock.setTime(130);
  assert.equal(out, []);
  assert.is(mailbox.length, 1);
  mailbox.shift()!();
  assert.equal(out.splice(0), ['m@130']);
  ts3.close();
  clock.setTime(300);
  assert.is(mailbox.length, 0);
  assert.is(ts3.processingTimeTimers, 1);
  assert.throws(() => new TimerService({ keyGroupOf: kgOf, clock }), /onProcessingTime/);
});

type TOp = { op: 'reg' | 'del'; key: number; ts: number } | { op: 'wm'; ts: number };

test('timers property: fires exactly the registered, undeleted timers ≤ watermark, in (ts, keyGroup, key) order', () => {
  const opArb: fc.Arbitrary<TOp> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant('reg' as const), key: fc.nat(12), ts: fc.integer({ min: 0, max: 60 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('del' as const), key: fc.nat(12), ts: fc.integer({ min: 0, max: 60 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('wm' as const), ts: fc.integer({ min: 0, max: 70 }) }) },
  );
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
      const ts = service<number, unknown>();
      let ref = new Map<string, [number, number, number]>(); // `${ts}:${key}` → [ts, kg, key]
      let wm = -1;
      for (const o of [...ops, { op: 'wm' as const, ts: 100 }]) {
        if (o.op === 'reg') {
          ts.registerEventTimeTimer(o.key, o.ts);
          ref.set(`${o.ts}:${o.key}`, [o.ts, kgOf(o.key), o.key]);
        } else if (o.op === 'del') {
          ts.deleteEventTimeTimer(o.key, o.ts);
          ref.delete(`${o.ts}:${o.key}`);
        } else {
          wm = Math.max(wm, o.ts);
          const due = [...ref.values()].filter(([t]) => t <= wm).sort((x, y) => x[0] - y[0] || x[1] - y[1] || (canonicalId(x[2]) < canonicalId(y[2]) ? -1 : 1));
          ref = new Map([...ref].filter(([, [t]]) => t > wm));
          const fired: number[][] = [];
          ts.advanceWatermark(o.ts, (t) => fired.push([t.timestamp, t.keyGroup, t.key]));
          if (JSON.stringify(fired) !== JSON.stringify(due)) return false;
          if (ts.eventTimeTimers !== ref.size) return false;
        }
      }
      return ts.eventTimeTimers === 0;
    }),
    { numRuns: 300 },
  );
});

test.run();
