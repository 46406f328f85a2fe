// Owns the tests of job-level managed-memory budgeting: size parsing, division of the budget by
// weight in whole segments, refused overspending, and the setup error for a budget too small.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { JobDefinitionError, MemoryBudgetError } from '../../src/core/errors.ts';
import { DEFAULT_MIN_SEGMENTS, formatBytes, MemoryManager, parseMemorySize } from '../../src/runtime/memory-manager.ts';
import { Rng } from '../reference/random.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

test('sizes parse as binary multiples, case-insensitively', () => {
  assert.is(parseMemorySize('64kb'), 64 * KiB);
  assert.is(parseMemorySize('512mb'), 512 * MiB);
  assert.is(parseMemorySize('1gb'), 1024 * MiB);
  assert.is(parseMemorySize('1GB'), 1024 * MiB);
  assert.is(parseMemorySize(' 2 MiB '), 2 * MiB);
  assert.is(parseMemorySize('3m'), 3 * MiB);
  assert.is(parseMemorySize('1.5g'), 1536 * MiB);
  assert.is(parseMemorySize('4096'), 4096);
  assert.is(parseMemorySize('100b'), 100);
  assert.is(parseMemorySize('2t'), 2 * 1024 * 1024 * MiB);
  assert.is(parseMemorySize(12345), 12345);
  assert.is(parseMemorySize(0), 0);
});

test('bad sizes are JobDefinitionErrors naming the option', () => {
  for (const bad of ['', 'lots', '12 parsecs', '-5mb', '1e3', 'mb', '5 m b'] as const) {
    assert.throws(() => parseMemorySize(bad), (e: unknown) => e instanceof JobDefinitionError && /managedMemory/.test((e as Error).message), bad);
  }
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 60]) {
    assert.throws(() => parseMemorySize(bad), (e: unknown) => e instanceof JobDefinitionError, String(bad));
  }
  assert.throws(() => parseMemorySize('9999999tb'), (e: unknown) => e instanceof JobDefinitionError);
  assert.throws(() => parseMemorySize(null as never), (e: unknown) => e instanceof JobDefinitionError);
  assert.throws(() => parseMemorySize('x', 'sortBuffer'), /sortBuffer/);
});

test('formatBytes', () => {
  assert.is(formatBytes(512 * MiB), '512 MiB');
  assert.is(formatBytes(32 * KiB), '32 KiB');
  assert.is(formatBytes(1000), '1000 bytes');
  assert.is(formatBytes(1536 * MiB), '1.5 GiB');
});

test('the budget is divided by weight in whole segments', () => {
  const mm = MemoryManager.create({
    managedMemory: '64mb', // 2048 segments
    consumers: [
      { operator: 'Sort(a)', weight: 70 },
      { operator: 'HashJoin(b)', weight: 70 },
      { operator: 'GroupReduce(c)', weight: 30 },
      { operator: 'Agg(d)' }, // weight 1
    ],
  });
  assert.is(mm.totalSegments, 2048);
  const seg = (op: string) => mm.reservation(op).segments;
  const exact = [70, 70, 30, 1].map((w) => (2048 * w) / 171);
  const got = [seg('Sort(a)'), seg('HashJoin(b)'), seg('GroupReduce(c)'), seg('Agg(d)')];
  got.forEach((g, i) => assert.ok(g === Math.floor(exact[i]!) || g === Math.ceil(exact[i]!), `share ${i}: ${g} vs ${exact[i]}`));
  assert.is(got.reduce((a, b) => a + b, 0), 2048, 'every whole segment is handed out');
  const r = mm.reservation('Sort(a)');
  assert.is(r.budgetBytes, r.segments * SEGMENT_BYTES);
  assert.ok(Math.abs(r.fraction - 70 / 171) < 1e-12);
  assert.match(mm.describe(), /Sort\(a\) \[0\]/);
});

test('subtasks each get a share; weights are per subtask', () => {
  const mm = MemoryManager.create({
    managedMemory: 100 * SEGMENT_BYTES + 5, // the odd 5 bytes are not a segment
    consumers: [
      { operator: 'Sort', weight: 2, parallelism: 4 },
      { operator: 'Join', weight: 1, parallelism: 2 },
    ],
  });
  assert.is(mm.totalSegments, 100);
  // total weight 2·4 + 1·2 = 10: each Sort subtask 20 segments, each Join subtask 10
  for (let s = 0; s < 4; s++) assert.is(mm.reservation('Sort', s).segments, 20);
  for (let s = 0; s < 2; s++) assert.is(mm.reservation('Join', s).segments, 10);
  assert.is(mm.reservations.length, 6);
  assert.throws(() => mm.reservation('Sort', 4), (e: unknown) => e instanceof JobDefinitionError);
  assert.throws(() => mm.reservation('Map'), /not declared a memory consumer/);
});

test('division property: shares sum to the budget, each within one segment of its exact share', () => {
  const rng = new Rng(17);
  for (let run = 0; run < 300; run++) {
    const n = 1 + rng.int(6);
    const consumers = Array.from({ length: n }, (_, i) => ({
      operator: `op${i}`,
      weight: 1 + rng.int(100),
      parallelism: 1 + rng.int(4),
      minSegments: 0,
    }));
    const segments = rng.int(5000);
    const mm = MemoryManager.create({ managedMemory: segments * SEGMENT_BYTES, consumers });
    const W = consumers.reduce((s, c) => s + c.weight * c.parallelism, 0);
    let sum = 0;
    for (const r of mm.reservations) {
      const c = consumers.find((x) => x.operator === r.operator)!;
      const exact = (segments * c.weight) / W;
      assert.ok(r.segments >= Math.floor(exact) && r.segments <= Math.floor(exact) + 1, `run ${run}: ${r.operator}[${r.subtask}] ${r.segments} vs ${exact}`);
      sum += r.segments;
    }
    assert.is(sum, segments, `run ${run}`);
  }
});

test('reserve/release in whole segments; overspending is a MemoryBudgetError naming operator and budget', () => {
  const mm = MemoryManager.create({
    managedMemory: '1mb', // 32 segments
    consumers: [{ operator: 'Sort(price)', weight: 1, parallelism: 2 }],
  });
  const r = mm.reservation('Sort(price)', 1);
  assert.is(r.segments, 16);
  r.reserve(1); // rounds up to one segment
  assert.is(r.segmentsReserved, 1);
  r.reserve(SEGMENT_BYTES * 10);
  assert.is(r.bytesReserved, 11 * SEGMENT_BYTES);
  assert.is(r.bytesAvailable, 5 * SEGMENT_BYTES);
  assert.ok(r.tryReserve(5 * SEGMENT_BYTES));
  assert.not.ok(r.tryReserve(1), 'full: tryReserve says no (the cue to spill)');
  assert.is(r.segmentsReserved, 16);
  let err: unknown;
  try {
    r.reserve(SEGMENT_BYTES);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof MemoryBudgetError);
  const e = err as MemoryBudgetError;
  assert.is(e.context.operator, 'Sort(price)');
  assert.is(e.context.subtask, 1);
  assert.match(e.message, /Sort\(price\)/);
  assert.match(e.message, /1 MiB/, 'names the job budget');
  assert.match(e.message, /512 KiB/, 'names the share');
  assert.is(r.segmentsReserved, 16, 'a refused reservation reserves nothing');
  // The other subtask's share is its own.
  mm.reservation('Sort(price)', 0).reserve(16 * SEGMENT_BYTES);
  assert.is(mm.segmentsReserved, 32);
  r.release(SEGMENT_BYTES * 10);
  assert.is(r.segmentsReserved, 6);
  assert.is(r.peakSegments, 16);
  assert.throws(() => r.releaseSegments(7), RangeError);
  r.releaseAll();
  assert.is(r.segmentsReserved, 0);
  assert.throws(() => r.reserve(-1), RangeError);
  assert.throws(() => r.reserve(1.5), RangeError);
  r.reserve(0);
  assert.is(r.segmentsReserved, 0);
});

test('a budget too small to make progress fails at setup naming the budget and the operators', () => {
  let err: unknown;
  try {
    MemoryManager.create({
      managedMemory: '256kb', // 8 segments
      consumers: [
        { operator: 'Sort(a)', weight: 1, parallelism: 2 }, // 2 + 2
        { operator: 'HashJoin(b)', weight: 1, minSegments: 2 }, // 2: enough
        { operator: 'Window(c)', weight: 1 }, // 2
      ],
    });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof MemoryBudgetError, String(err));
  const m = (err as Error).message;
  assert.match(m, /256 KiB/);
  assert.match(m, /Sort\(a\) gets 2 segments per subtask and needs 4/);
  assert.match(m, /Window\(c\) gets 2 segments per subtask and needs 4/);
  assert.not.match(m, /HashJoin/, 'operators with enough are not blamed');
  // The suggested budget really is enough.
  const need = /at least ([\d.]+) (KiB|MiB)/.exec(m);
  assert.ok(need, m);
  const bytes = Math.round(Number(need![1]) * (need![2] === 'KiB' ? KiB : MiB));
  MemoryManager.create({
    managedMemory: bytes,
    consumers: [
      { operator: 'Sort(a)', weight: 1, parallelism: 2 },
      { operator: 'HashJoin(b)', weight: 1, minSegments: 2 },
      { operator: 'Window(c)', weight: 1 },
    ],
  });
  // A budget under one segment.
  assert.throws(() => MemoryManager.create({ managedMemory: '16kb', consumers: [{ operator: 'Sort' }] }), (e: unknown) =>
    e instanceof MemoryBudgetError && /16 KiB \(0 segments/.test((e as Error).message));
  assert.is(DEFAULT_MIN_SEGMENTS, 4);
});

test('no consumers, or consumers that need nothing, are fine at any budget', () => {
  assert.is(MemoryManager.create({ managedMemory: 0, consumers: [] }).reservations.length, 0);
  const mm = MemoryManager.create({ managedMemory: 0, consumers: [{ operator: 'Sort', minSegments: 0 }] });
  assert.is(mm.reservation('Sort').segments, 0);
  assert.throws(() => mm.reservation('Sort').reserve(1), (e: unknown) => e instanceof MemoryBudgetError);
});

test('bad consumer declarations are JobDefinitionErrors', () => {
  const bad = [
    [{ operator: '' }],
    [{ operator: 'A' }, { operator: 'A' }],
    [{ operator: 'A', weight: 0 }],
    [{ operator: 'A', weight: -1 }],
    [{ operator: 'A', weight: Infinity }],
    [{ operator: 'A', parallelism: 0 }],
    [{ operator: 'A', parallelism: 1.5 }],
    [{ operator: 'A', minSegments: -1 }],
  ];
  for (const consumers of bad) {
    assert.throws(() => MemoryManager.create({ managedMemory: '1gb', consumers }), (e: unknown) => e instanceof JobDefinitionError, JSON.stringify(consumers));
  }
});

test.run();
