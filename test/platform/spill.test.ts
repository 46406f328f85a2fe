// Owns the spill store tests: every check runs against the store of the runtime running the suite
// (the Node file store on Node and Bun, the Deno file store on Deno) and against the in-memory store
// (workerd, browsers): round trips of many random-size batches, interleaved files, corrupt and
// truncated files, cleanup on close / on a throw / on abort, and the byte accounting.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, rmSync, readFileSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_HEADER_BYTES, BATCH_MAGIC } from '../../bindings/abi.generated.ts';
import { CorruptBatchError, MemoryBudgetError } from '../../src/core/errors.ts';
import { decodeBatches, encodeBatches } from '../../src/core/rows.ts';
import { schema, t } from '../../src/core/schema.ts';
import { detectPlatform, detectRuntime, SpillStoreClosedError, withSpillStore } from '../../src/platform/index.ts';
import { memorySpill, tamperMemorySpillFile } from '../../src/platform/spill-memory.ts';
import type { SpillStore, SpillStoreFactory, SpillStoreOptions } from '../../src/platform/types.ts';
import { Rng } from '../reference/random.ts';

// Every file store of this suite lives under one parent, so the last test can prove nothing is left.
const parent = mkdtempSync(join(tmpdir(), 'sluice-spill-test-'));
const runtimeSpill = (await detectPlatform()).spill;

const stores: Array<[label: string, factory: SpillStoreFactory]> = [
  [`${detectRuntime()} ${runtimeSpill.kind} store`, runtimeSpill],
  ['memory store', memorySpill],
];

/** A well-framed batch of `bytes` bytes (a multiple of 8, ≥ 16) with seeded random row bytes. */
function fakeBatch(rng: Rng, bytes: number, tag: number): Uint8Array {
  const b = new Uint8Array(bytes);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, BATCH_MAGIC, true);
  dv.setUint32(4, bytes, true);
  dv.setUint32(8, rng.int((bytes - BATCH_HEADER_BYTES) / 8 + 1), true);
  dv.setUint32(12, tag, true);
  const words = new Uint32Array(b.buffer, BATCH_HEADER_BYTES);
  let x = rng.u32() | 1; // xorshift32 per word: seeded, and fast enough for megabytes
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return b;
}

/** Sizes from a header alone to well past the read/write buffers. */
function randomSize(rng: Rng): number {
  const r = rng.int(10);
  const max = r < 6 ? 512 : r < 9 ? 40_000 : 700_000;
  return BATCH_HEADER_BYTES + 8 * rng.int(max / 8);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function readAll(store: SpillStore, file: { read(): AsyncIterable<Uint8Array> }): Promise<Uint8Array[]> {
  void store;
  const out: Uint8Array[] = [];
  for await (const b of file.read()) out.push(b);
  return out;
}

async function rejects(p: Promise<unknown>, check: (e: unknown) => boolean, what: string): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    assert.ok(check(e), `${what}: wrong error ${String((e as Error)?.stack ?? e)}`);
    return e;
  }
  assert.unreachable(`${what}: did not throw`);
}

const opts = (extra: SpillStoreOptions = {}): SpillStoreOptions => ({ dir: parent, ...extra });

/** Where the store keeps its bytes, if it is a directory we can look at. */
function dirOf(store: SpillStore): string | undefined {
  return store.kind === 'file' ? store.location : undefined;
}

for (const [label, factory] of stores) {
  test(`${label}: many batches of random sizes round-trip`, async () => {
    for (const bufferBytes of [undefined, 4096]) {
      const rng = new Rng(11);
      const store = await factory.createSpillStore(opts({ bufferBytes }));
      try {
        const w = await store.create('round trip');
        const batches: Uint8Array[] = [];
        for (let i = 0; i < 300; i++) {
          const b = fakeBatch(rng, randomSize(rng), i);
          batches.push(b.slice());
          await w.append(b);
          b.fill(0xee); // the store has copied or written it: reusing the memory must not matter
        }
        const file = await w.finish();
        assert.is(file.batchCount, 300);
        assert.is(file.byteLength, batches.reduce((s, b) => s + b.length, 0));
        for (let pass = 0; pass < 2; pass++) {
          const back = await readAll(store, file);
          assert.is(back.length, batches.length);
          for (let i = 0; i < back.length; i++) assert.ok(equalBytes(back[i]!, batches[i]!), `batch ${i} differs (buffer ${bufferBytes})`);
          assert.ok(back.every((b) => b.byteOffset === 0 && b.buffer.byteLength === b.length), 'each batch owns its buffer');
        }
        await file.delete();
      } finally {
        await store.close();
      }
    }
  });

  test(`${label}: nextView gives the same batches as next, as views of the reader's buffer`, async () => {
    const rng = new Rng(31);
    for (const bufferBytes of [undefined, 4096]) {
      await withSpillStore(factory, opts({ bufferBytes }), async (store) => {
        const w = await store.create('views');
        const batches = Array.from({ length: 200 }, (_, i) => fakeBatch(rng, randomSize(rng), i));
        await w.appendAll(batches);
        const file = await w.finish();
        const r = file.read();
        let views = 0;
        for (let i = 0; ; i++) {
          const b = rng.bool() ? await r.nextView() : await r.next();
          if (b === undefined) {
            assert.is(i, batches.length);
            break;
          }
          assert.ok(equalBytes(b, batches[i]!), `batch ${i} differs (buffer ${bufferBytes})`);
          if (b.buffer.byteLength !== b.length) views++;
          b.fill(0x55); // the caller may scribble on it: the next batch is read whole all the same
        }
        assert.ok(views > 0, 'some batches came as views');
      });
    }
  });

  test(`${label}: appendAll interleaved with append keeps order, accounting and the budget`, async () => {
    const rng = new Rng(23);
    for (const bufferBytes of [undefined, 4096]) {
      await withSpillStore(factory, opts({ bufferBytes, maxBytes: 20_000_000 }), async (store) => {
        const w = await store.create('bulk');
        const expected: Uint8Array[] = [];
        const pending: Promise<void>[] = [];
        for (let k = 0; k < 12; k++) {
          if (rng.int(2) === 0) {
            const b = fakeBatch(rng, randomSize(rng), k);
            expected.push(b);
            pending.push(w.append(b)); // not awaited one by one
          } else {
            // some batches at the start of larger blocks: only each batch's own bytes are written
            const group = Array.from({ length: rng.int(40) }, (_, i) => {
              const b = fakeBatch(rng, randomSize(rng), 1000 * k + i);
              expected.push(b);
              if (rng.int(3) > 0) return b;
              const block = new Uint8Array(b.length + 64).fill(0xcd);
              block.set(b);
              return block;
            });
            pending.push(w.appendAll(group));
          }
        }
        await Promise.all(pending);
        const total = expected.reduce((n, b) => n + b.length, 0);
        assert.is(w.batchCount, expected.length);
        assert.is(w.byteLength, total);
        assert.is(store.stats.bytesLive, total);
        // a bad batch anywhere in the list: nothing of the list is appended
        const bad = fakeBatch(rng, 64, 0);
        bad[0] = 0;
        await rejects(w.appendAll([fakeBatch(rng, 64, 1), bad]), (e) => e instanceof CorruptBatchError, 'bad batch');
        // past maxBytes: refused whole, naming the budget
        const big = Array.from({ length: 40 }, (_, i) => fakeBatch(rng, 700_000, i));
        await rejects(w.appendAll(big), (e) => e instanceof MemoryBudgetError && /20000000 bytes/.test((e as Error).message), 'budget');
        assert.is(w.batchCount, expected.length);
        const file = await w.finish();
        assert.is(file.byteLength, total);
        const back = await readAll(store, file);
        assert.is(back.length, expected.length);
        back.forEach((b, i) => assert.ok(equalBytes(b, expected[i]!), `batch ${i} differs (buffer ${bufferBytes})`));
      });
    }
  });

  test(`${label}: real binary-row batches decode after the round trip; a segment-sized block writes only its batch`, async () => {
    const s = schema({ id: t.i32(), name: t.string(), px: t.f64().nullable() });
    const records = Array.from({ length: 5000 }, (_, i) => ({ id: i, name: `n${i % 97}`.repeat(1 + (i % 5)), px: i % 7 === 0 ? null : i / 3 }));
    const batches = encodeBatches(s, records, { batchBytes: 32 * 1024 });
    assert.ok(batches.length > 3);
    await withSpillStore(factory, opts(), async (store) => {
      const w = await store.create('rows');
      for (const b of batches) {
        const segment = new Uint8Array(32 * 1024 + 64); // a batch at the start of a larger block
        segment.set(b);
        segment.fill(0xab, b.length);
        await w.append(segment);
      }
      const file = await w.finish();
      assert.is(file.byteLength, batches.reduce((n, b) => n + b.length, 0));
      assert.equal(decodeBatches(s, await readAll(store, file)), records);
    });
  });

  test(`${label}: interleaved writers and readers`, async () => {
    const rng = new Rng(7);
    await withSpillStore(factory, opts({ bufferBytes: 8192 }), async (store) => {
      const writers = await Promise.all([0, 1, 2, 3, 4].map((i) => store.create(`run-${i}`)));
      const expected: Uint8Array[][] = writers.map(() => []);
      const pending: Promise<void>[] = [];
      for (let k = 0; k < 400; k++) {
        const i = rng.int(writers.length);
        const b = fakeBatch(rng, Math.max(16, (randomSize(rng) % 50_000) & ~7), i);
        expected[i]!.push(b);
        pending.push(writers[i]!.append(b)); // not awaited one by one: appends queue in call order
      }
      await Promise.all(pending);
      const files = await Promise.all(writers.map((w) => w.finish()));
      assert.is(store.stats.filesLive, 5);
      const readers = files.map((f) => f.read());
      const got: Uint8Array[][] = files.map(() => []);
      let open = readers.length;
      const done = new Set<number>();
      while (open > 0) {
        const i = rng.int(readers.length);
        if (done.has(i)) continue;
        const b = await readers[i]!.next();
        if (b === undefined) {
          done.add(i);
          open--;
        } else got[i]!.push(b);
      }
      for (let i = 0; i < files.length; i++) {
        assert.is(got[i]!.length, expected[i]!.length, `file ${i} batch count`);
        got[i]!.forEach((b, j) => assert.ok(equalBytes(b, expected[i]![j]!), `file ${i} batch ${j}`));
      }
      // A second reader of the same file at the same time as a first one.
      const a = files[0]!.read();
      const b = files[0]!.read();
      const a0 = await a.next();
      const b0 = await b.next();
      const a1 = await a.next();
      assert.ok(a0 && b0 && a1 && equalBytes(a0, b0) && equalBytes(a1, expected[0]![1]!));
      await a.close();
      await b.close();
    });
  });

  test(`${label}: accounting`, async () => {
    const rng = new Rng(3);
    const store = await factory.createSpillStore(opts());
    try {
      assert.equal(store.stats, { bytesWritten: 0, batchesWritten: 0, bytesRead: 0, bytesLive: 0, filesLive: 0, filesCreated: 0 });
      const w1 = await store.create('a');
      const w2 = await store.create('b');
      await w1.append(fakeBatch(rng, 1000 * 8, 1));
      await w1.append(fakeBatch(rng, 24, 1));
      await w2.append(fakeBatch(rng, 4096, 2));
      assert.is(w1.byteLength, 8024);
      assert.is(w1.batchCount, 2);
      assert.equal(store.stats, { bytesWritten: 12120, batchesWritten: 3, bytesRead: 0, bytesLive: 12120, filesLive: 2, filesCreated: 2 });
      const f1 = await w1.finish();
      await w2.abort();
      assert.equal(store.stats, { bytesWritten: 12120, batchesWritten: 3, bytesRead: 0, bytesLive: 8024, filesLive: 1, filesCreated: 2 });
      await readAll(store, f1);
      assert.is(store.stats.bytesRead, 8024);
      await f1.delete();
      await f1.delete(); // idempotent
      assert.is(store.stats.bytesLive, 0);
      assert.is(store.stats.filesLive, 0);
      if (dirOf(store)) assert.equal(readdirSync(dirOf(store)!), [], 'deleted and aborted files are gone from disk');
      // An empty run is a valid run.
      const empty = await (await store.create('empty')).finish();
      assert.equal(await readAll(store, empty), []);
    } finally {
      await store.close();
    }
    assert.is(store.stats.bytesLive, 0);
    assert.is(store.stats.filesLive, 0);
  });

  test(`${label}: maxBytes is a clear MemoryBudgetError`, async () => {
    const rng = new Rng(5);
    await withSpillStore(factory, opts({ maxBytes: 10_000 }), async (store) => {
      const w = await store.create('capped');
      await w.append(fakeBatch(rng, 8000, 0));
      const e = await rejects(w.append(fakeBatch(rng, 4000, 0)), (e) => e instanceof MemoryBudgetError, 'over maxBytes');
      assert.match(String((e as Error).message), /10000 bytes/);
      await w.abort();
      await (await store.create('again')).append(fakeBatch(rng, 8000, 0)); // deleting freed the space
    });
  });

  test(`${label}: appending something that is not a batch is refused`, async () => {
    await withSpillStore(factory, opts(), async (store) => {
      const w = await store.create('bad');
      const rng = new Rng(1);
      const noMagic = fakeBatch(rng, 64, 0);
      noMagic[0] = 0;
      await rejects(w.append(noMagic), (e) => e instanceof CorruptBatchError, 'no magic');
      const tooLong = fakeBatch(rng, 64, 0);
      new DataView(tooLong.buffer).setUint32(4, 128, true);
      await rejects(w.append(tooLong), (e) => e instanceof CorruptBatchError, 'byteLength past the block');
      const odd = fakeBatch(rng, 64, 0);
      new DataView(odd.buffer).setUint32(4, 60, true);
      await rejects(w.append(odd), (e) => e instanceof CorruptBatchError, 'byteLength not a multiple of 8');
      await rejects(w.append(new Uint8Array(8)), (e) => e instanceof CorruptBatchError, 'shorter than a header');
      assert.is(w.batchCount, 0);
    });
  });

  test(`${label}: truncated or corrupt files are CorruptBatchError naming the file, never garbage`, async () => {
    const rng = new Rng(9);
    const sizes = [64, 40_000, 16, 300_000, 128];
    // Each case edits the stored bytes and says how many batches come back before the error, and how
    // many of those are intact (framing alone cannot see a shortened length until the next header).
    const cases: Array<[name: string, edit: (b: Uint8Array) => Uint8Array, okBatches: number, intact?: number]> = [
      ['truncated inside the 2nd batch', (b) => b.slice(0, 64 + 100), 1],
      ['truncated inside the 4th (large) batch', (b) => b.slice(0, 64 + 40_000 + 16 + 200_000), 3],
      ['truncated inside a header', (b) => b.slice(0, 64 + 40_000 + 5), 2],
      ['truncated to nothing', () => new Uint8Array(0), 0],
      ['magic of the 3rd batch overwritten', (b) => { const c = b.slice(); c[64 + 40_000] = 0x58; return c; }, 2],
      ['byteLength of the 2nd batch too large', (b) => { const c = b.slice(); new DataView(c.buffer).setUint32(64 + 4, 0x7ffffff8, true); return c; }, 1],
      ['byteLength of the 1st batch not a multiple of 8', (b) => { const c = b.slice(); new DataView(c.buffer).setUint32(4, 70, true); return c; }, 0],
      ['byteLength shrunk so the next header is misread', (b) => { const c = b.slice(); new DataView(c.buffer).setUint32(64 + 4, 39_992, true); return c; }, 2, 1],
      ['rowCount impossible', (b) => { const c = b.slice(); new DataView(c.buffer).setUint32(8, 1000, true); return c; }, 0],
      ['garbage appended', (b) => { const c = new Uint8Array(b.length + 8); c.set(b); return c; }, 5],
    ];
    await withSpillStore(factory, opts({ bufferBytes: 4096 }), async (store) => {
      for (const [name, edit, okBatches, intact = okBatches] of cases) {
        const w = await store.create('victim');
        const written = sizes.map((n, i) => fakeBatch(rng, n, i));
        for (const b of written) await w.append(b);
        const file = await w.finish();
        if (store.kind === 'file') {
          const edited = edit(new Uint8Array(readFileSync(file.location)));
          writeFileSync(file.location, edited);
        } else {
          tamperMemorySpillFile(store, file.location, edit);
        }
        const reader = file.read();
        const good: Uint8Array[] = [];
        let error: unknown;
        try {
          for (let b = await reader.next(); b !== undefined; b = await reader.next()) good.push(b);
        } catch (e) {
          error = e;
        }
        assert.ok(error instanceof CorruptBatchError, `${name}: expected CorruptBatchError, got ${String(error)}`);
        assert.ok((error as Error).message.includes(file.location), `${name}: message names the file: ${(error as Error).message}`);
        assert.is(good.length, okBatches, `${name}: batches before the damage`);
        good.slice(0, intact).forEach((b, i) => assert.ok(equalBytes(b, written[i]!), `${name}: batch ${i} intact`));
        await reader.close();
        await file.delete();
      }
      if (store.kind === 'file') {
        // Damage done by another process with the usual tools: truncate(2) and append.
        const w = await store.create('victim2');
        for (const n of sizes) await w.append(fakeBatch(rng, n, 0));
        const file = await w.finish();
        truncateSync(file.location, 64 + 40_000 + 8);
        await rejects(readAll(store, file), (e) => e instanceof CorruptBatchError && (e as Error).message.includes('truncated'), 'truncate(2)');
        appendFileSync(file.location, new Uint8Array(1000));
        await rejects(readAll(store, file), (e) => e instanceof CorruptBatchError, 'zeros where the batches were');
      }
    });
  });

  test(`${label}: close() removes everything, is idempotent, and stops later use`, async () => {
    const rng = new Rng(2);
    const store = await factory.createSpillStore(opts());
    const w = await store.create('open at close');
    await w.append(fakeBatch(rng, 100_000, 0));
    const done = await store.create('finished');
    await done.append(fakeBatch(rng, 64, 0));
    await done.append(fakeBatch(rng, 64, 0));
    const file = await done.finish();
    const reader = file.read();
    assert.ok(await reader.next());
    if (dirOf(store)) assert.is(readdirSync(dirOf(store)!).length, 2);
    await Promise.all([store.close(), store.close()]);
    await store.close();
    assert.ok(store.closed);
    if (dirOf(store)) assert.not.ok(existsSync(dirOf(store)!), 'temp directory removed');
    assert.equal({ live: store.stats.bytesLive, files: store.stats.filesLive }, { live: 0, files: 0 });
    const closed = (e: unknown) => e instanceof SpillStoreClosedError;
    await rejects(store.create('late'), closed, 'create after close');
    await rejects(w.append(fakeBatch(rng, 64, 0)), closed, 'append after close');
    // A reader cut off by close must fail, not pretend the run ended (that would drop data silently).
    await rejects(reader.next(), closed, 'read after close');
    assert.throws(() => file.read(), closed);
  });

  test(`${label}: an exception thrown mid-write still removes the temp directory`, async () => {
    const rng = new Rng(4);
    let seen: SpillStore | undefined;
    const boom = new Error('user code failed mid-spill');
    await rejects(
      withSpillStore(factory, opts(), async (store) => {
        seen = store;
        const w = await store.create('half');
        for (let i = 0; i < 50; i++) {
          void w.append(fakeBatch(rng, 20_000, i)).catch(() => {}); // writes still in flight when we throw
          if (i === 30) throw boom;
        }
      }),
      (e) => e === boom,
      'withSpillStore rethrows',
    );
    assert.ok(seen?.closed);
    if (dirOf(seen!)) assert.not.ok(existsSync(dirOf(seen!)!), 'temp directory removed after the throw');
  });

  test(`${label}: aborting the signal (cancellation) closes the store mid-write`, async () => {
    const rng = new Rng(6);
    const ac = new AbortController();
    const store = await factory.createSpillStore(opts({ signal: ac.signal, bufferBytes: 4096 }));
    const w = await store.create('cancelled');
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) writes.push(w.append(fakeBatch(rng, 16_000, i)));
    ac.abort();
    await Promise.allSettled(writes);
    await store.close(); // the same promise the abort started
    assert.ok(store.closed);
    if (dirOf(store)) assert.not.ok(existsSync(dirOf(store)!), 'temp directory removed after abort');
    await rejects(w.append(fakeBatch(rng, 64, 0)), (e) => e instanceof SpillStoreClosedError, 'append after abort');
    // An already-aborted signal: no store is made at all, or it is made closed.
    await rejects(factory.createSpillStore(opts({ signal: AbortSignal.abort() })).then((s) => s.create('x')), () => true, 'pre-aborted');
  });

  test(`${label}: await using closes the store`, async () => {
    let dir: string | undefined;
    let ref: SpillStore | undefined;
    {
      await using store = await factory.createSpillStore(opts());
      ref = store;
      dir = dirOf(store);
      const w = await store.create('scoped');
      await w.append(fakeBatch(new Rng(8), 256, 0));
    }
    assert.ok(ref.closed);
    if (dir) assert.not.ok(existsSync(dir));
  });
}

test('file stores leave nothing behind in their parent directory', () => {
  assert.equal(readdirSync(parent), []);
  rmSync(parent, { recursive: true, force: true });
});

test.run();
