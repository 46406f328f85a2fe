// Tests errors in the MessagePack codec (the error extension of src/core/any-codec.ts over
// src/core/error-codec.ts): an InvalidKeyError holding a nested record, a cause chain, standard and
// registered classes come back as instances of their class with their properties; what an error holds
// that the codec cannot encode travels as text; malformed error extensions are CorruptBatchError; the
// worker failure report (serializeError / reviveError) revives the same way.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { AnyEncoder, decodeAny, EXT_ERROR } from '../../src/core/any-codec.ts';
import { registerErrorClass, reviveError, serializeError } from '../../src/core/error-codec.ts';
import { CorruptBatchError, FieldValueError, JobDefinitionError, SluiceError, UserFunctionError } from '../../src/core/errors.ts';
import { InvalidTimestampError } from '../../src/api/watermarks.ts';
import { checkKey, InvalidKeyError } from '../../src/runtime/keys.ts';
import '../../src/runtime/cluster.ts'; // registers the runtime's error classes (InvalidKeyError)

const enc = new AnyEncoder();
const byField = (field: string) => ({ field, description: field, fn: (r: Record<string, unknown>) => r[field] });
const roundTrip = <T>(v: T): T => {
  const b = enc.encode(v).slice();
  return decodeAny(b, 0, b.length) as T;
};

test('an InvalidKeyError with a nested record comes back as an InvalidKeyError naming operator and record', () => {
  const record = { id: 7, when: new Date(1_700_000_000_123), tags: ['a', 'b'], nested: { deep: [1n, -0, null], bytes: new Uint8Array([1, 2, 3]) } };
  const bad = checkKey(byField('account'), record, 'KeyBy(account)', 1, 42);
  assert.ok(bad instanceof InvalidKeyError);
  const back = roundTrip([{ before: 1 }, bad, 'after'])[1] as InvalidKeyError<typeof record>;
  assert.ok(back instanceof InvalidKeyError, String(back));
  assert.ok(back instanceof SluiceError && back instanceof Error);
  assert.is(back.name, 'InvalidKeyError');
  assert.is(back.message, bad!.message);
  assert.is(back.stack, bad!.stack);
  // a genuine error object: a structured clone (how collect sinks report from workers) keeps its message
  assert.is(Object.prototype.toString.call(back), '[object Error]');
  assert.is(structuredClone(back).message, bad!.message);
  assert.equal(back.context, { operator: 'KeyBy(account)', subtask: 1, recordIndex: 42 });
  assert.is(back.reason, 'missing-field');
  assert.is(back.domain, 'user');
  assert.is(back.retryable, false);
  assert.equal(back.record, record);
  assert.ok(back.record.when instanceof Date && back.record.nested.bytes instanceof Uint8Array);
  assert.ok(Object.is(back.record.nested.deep[1], -0));
  assert.is(back.key, undefined); // an undefined property is skipped, as everywhere in the codec
  // the cause (the error the job would have failed with) is a JobDefinitionError again
  assert.ok(back.cause instanceof JobDefinitionError, String(back.cause));
  assert.is((back.cause as Error).message, (bad!.cause as Error).message);
  assert.equal(Object.keys(back), Object.keys(bad!).filter((k) => k !== 'name' && (bad as unknown as Record<string, unknown>)[k] !== undefined));
});

test('a cause chain: each link an instance of its class; a TypeError stays a TypeError', () => {
  const root = new TypeError('x is not a function');
  const user = new UserFunctionError(root, { operator: 'Map(parse)', subtask: 0, recordIndex: 3 });
  const outer = new SluiceError('outer', { cause: user, context: { operator: 'Sink' } });
  const back = roundTrip(outer);
  assert.ok(back instanceof SluiceError);
  assert.equal(back.context, { operator: 'Sink' });
  const mid = back.cause as UserFunctionError;
  assert.ok(mid instanceof UserFunctionError);
  assert.equal(mid.context, user.context);
  assert.is(mid.message, user.message);
  const leaf = mid.cause as TypeError;
  assert.ok(leaf instanceof TypeError && !(leaf instanceof SluiceError));
  assert.is(leaf.name, 'TypeError');
  assert.is(leaf.message, 'x is not a function');
  assert.not.ok('cause' in leaf);
  // a plain Error with own properties and an explicit cause of undefined
  const plain = Object.assign(new Error('plain', { cause: undefined }), { code: 'E42', detail: { n: 1 } });
  const p = roundTrip(plain);
  assert.ok(Object.getPrototypeOf(p) === Error.prototype);
  assert.equal({ ...p }, { code: 'E42', detail: { n: 1 } });
  assert.ok('cause' in p && p.cause === null); // undefined travels as nil, as everywhere in the codec
});

test('an error class outside core is revived once registered, else as a SluiceError of that name', () => {
  class TradeError extends Error {
    constructor(readonly trade: { id: number }) {
      super(`bad trade ${trade.id}`);
      this.name = 'TradeError';
    }
  }
  const before = roundTrip(new TradeError({ id: 1 }));
  assert.ok(before instanceof SluiceError && !((before as unknown) instanceof TradeError));
  assert.is((before as Error).name, 'TradeError');
  assert.equal((before as unknown as TradeError).trade, { id: 1 });
  registerErrorClass(TradeError, InvalidTimestampError);
  const after = roundTrip(new TradeError({ id: 2 }));
  assert.ok(after instanceof TradeError);
  assert.equal(after.trade, { id: 2 });
  const ts = roundTrip(new InvalidTimestampError({ v: 1 }, 'soon', 'not a number', { operator: 'Timestamps', recordIndex: 0 }));
  assert.ok(ts instanceof InvalidTimestampError);
  assert.equal(ts.record, { v: 1 });
  assert.is(ts.value, 'soon');
});

test('what an error holds that the codec cannot encode travels as text; cycles end', () => {
  const e = Object.assign(new Error('odd'), { fn: () => 1, map: new Map([[1, 2]]), ok: 5 });
  (e as unknown as Record<string, unknown>).self = e;
  const cyclicCause = new Error('loop');
  (cyclicCause as { cause?: unknown }).cause = cyclicCause;
  const back = roundTrip({ e, cyclicCause }) as unknown as { e: Record<string, unknown>; cyclicCause: Error };
  assert.is(back.e.ok, 5);
  assert.is(typeof back.e.fn, 'string');
  assert.is(back.e.map, '[object Map]');
  assert.is(back.e.self, 'Error: odd');
  assert.is(back.cyclicCause.cause, 'Error: loop');
  const getter = Object.defineProperty(new Error('g'), 'boom', { enumerable: true, get: () => { throw new Error('no'); } });
  assert.match(String((roundTrip(getter) as unknown as Record<string, unknown>).boom), /getter threw: no/);
  // the same values outside an error are still refused
  assert.throws(() => enc.encode({ fn: () => 1 }));
});

test('errors of every size: ext 8, 16 and 32 headers', () => {
  for (const n of [0, 200, 70_000]) {
    const e = Object.assign(new FieldValueError('f', 'wrong-type', 'i32', 'x'.repeat(n)), { stack: undefined });
    const back = roundTrip(e);
    assert.ok(back instanceof FieldValueError);
    assert.is(back.value, 'x'.repeat(n));
    assert.is(back.stack, undefined);
  }
});

/** An error extension around `payload` (ext 8). */
function ext(payload: number[], type = EXT_ERROR): Uint8Array {
  return new Uint8Array([0xc7, payload.length, type & 0xff, ...payload]);
}
const str = (s: string) => [0xa0 | s.length, ...new TextEncoder().encode(s)];

test('malformed error extensions are CorruptBatchError', () => {
  const dec = (b: Uint8Array) => decodeAny(b, 0, b.length);
  const good = [0x94, ...str('Error'), ...str('m'), 0xc0, 0x80];
  assert.ok(dec(ext(good)) instanceof Error);
  const bad: [string, Uint8Array][] = [
    ['not an array', ext([...str('Error')])],
    ['3 elements', ext([0x93, ...str('Error'), ...str('m'), 0xc0])],
    ['6 elements', ext([0x96, ...str('Error'), ...str('m'), 0xc0, 0x80, 0xc0, 0xc0])],
    ['name not a string', ext([0x94, 0x01, ...str('m'), 0xc0, 0x80])],
    ['message not a string', ext([0x94, ...str('Error'), 0xc0, 0xc0, 0x80])],
    ['stack a number', ext([0x94, ...str('Error'), ...str('m'), 0x05, 0x80])],
    ['props an array', ext([0x94, ...str('Error'), ...str('m'), 0xc0, 0x90])],
    ['props nil', ext([0x94, ...str('Error'), ...str('m'), 0xc0, 0xc0])],
    ['trailing bytes in the payload', ext([...good, 0xc0])],
    ['payload runs past the extension', ext(good.slice(0, -1))],
    ['extension longer than the input', new Uint8Array([0xc7, 40, EXT_ERROR, ...good])],
    ['unknown extension type', ext(good, 2)],
  ];
  // the truncated payload's missing byte must not be read from after the extension
  bad.push(['payload reads past its extension into the next value', new Uint8Array([0x92, ...ext(good.slice(0, -1)), 0x80])]);
  for (const [what, bytes] of bad) {
    assert.throws(() => dec(bytes), (e: unknown) => e instanceof CorruptBatchError, what);
  }
  // random bytes inside an error extension: CorruptBatchError or a value, never another error
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 48 }), (b) => {
      try {
        dec(ext([0x94, ...b]));
      } catch (e) {
        assert.ok(e instanceof CorruptBatchError, String(e));
      }
    }),
    { numRuns: 3000 },
  );
});

test('the worker failure report revives the same classes (serializeError / reviveError)', () => {
  const bad = checkKey(byField('k'), { v: 1 }, 'KeyBy(k)', 0, 9)!;
  const back = reviveError(structuredClone(serializeError(bad)));
  assert.ok(back instanceof InvalidKeyError);
  assert.equal((back as InvalidKeyError).record, { v: 1 });
  assert.equal((back as InvalidKeyError).context, { operator: 'KeyBy(k)', subtask: 0, recordIndex: 9 });
  assert.ok(back.cause instanceof JobDefinitionError);
  const te = reviveError(serializeError(new TypeError('t')));
  assert.ok(te instanceof TypeError);
  assert.not.ok('cause' in te);
  const unknown = reviveError({ name: 'WeirdError', message: 'w', props: { __proto__: 1 } as Record<string, unknown> });
  assert.ok(unknown instanceof SluiceError);
});

test.run();
