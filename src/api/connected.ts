// Owns two-input streams: ConnectedStreams (connect → process/map/flatMap, keyed with keyBy(k1, k2)),
// BroadcastStream and BroadcastConnectedStream (the broadcast state pattern).

import { JobDefinitionError } from '../core/errors.ts';
import type { KeySelectorSpec } from '../graph/operator.ts';
import type { Transformation } from '../graph/transformation.ts';
import { ProcessOperator } from '../operators/process.ts';
import type { MapStateDescriptor } from '../state/descriptors.ts';
import type { StreamEnvironment } from './environment.ts';
import type { SingleOutputStreamOperator } from './datastream.ts';
import { DataStream, addOperatorTo, checkProcessFunction, keySpec, objectLabel } from './datastream.ts';
import type { BroadcastProcessFunction, CoProcessFunction, KeyedBroadcastProcessFunction, KeyedCoProcessFunction } from './functions.ts';

/**
 * Two streams connected for a two-input function. Records of each input are processed in order per
 * input; there is no order between the inputs. Watermark = the minimum of both inputs'.
 *
 * @example
 * const both = clicks.connect(views).map((c) => `click ${c.id}`, (v) => `view ${v.id}`);
 */
export class ConnectedStreams<A, B> {
  /** @internal */
  constructor(
    readonly env: StreamEnvironment,
    readonly first: DataStream<A>,
    readonly second: DataStream<B>,
    /** @internal */
    readonly keys?: { readonly k1: KeySelectorSpec; readonly k2: KeySelectorSpec },
  ) {}

  /**
   * Partitions both inputs by key so records with equal keys meet in one subtask (keyed state and
   * timers are shared by both inputs).
   * @example orders.connect(payments).keyBy('orderId', 'orderId')
   */
  keyBy<K>(key1: string | ((value: A) => K), key2: string | ((value: B) => K)): ConnectedStreams<A, B> {
    const k1 = keySpec(key1);
    const k2 = keySpec(key2);
    return new ConnectedStreams<A, B>(
      this.env,
      new DataStream<A>(this.env, this.first.partitioned({ kind: 'hash', key: k1 })),
      new DataStream<B>(this.env, this.second.partitioned({ kind: 'hash', key: k2 })),
      { k1, k2 },
    );
  }

  /**
   * Runs a {@link CoProcessFunction} (or, after `keyBy`, a {@link KeyedCoProcessFunction} with keyed
   * state and timers).
   * @example
   * a.connect(b).keyBy('id', 'id').process<Joined>({
   *   open(ctx) { this.left = ctx.getState(new ValueStateDescriptor<A>('left')); },
   *   processElement1(x, ctx, out) { this.left.update(x); },
   *   processElement2(y, ctx, out) { const x = this.left.value(); if (x) out.collect({ x, y }); },
   * });
   */
  process<O>(fn: CoProcessFunction<A, B, O> | KeyedCoProcessFunction<any, A, B, O>): SingleOutputStreamOperator<O> {
    checkProcessFunction(fn, ['processElement1', 'processElement2'], 'connect(...).process');
    const keys = this.keys;
    const name = objectLabel(keys ? 'KeyedCoProcess' : 'CoProcess', fn);
    return addOperatorTo<O>(this.env, name, () => new ProcessOperator({ shape: 'co', fn, ...(keys ? { key: keys.k1, key2: keys.k2 } : {}) }), {
      input: this.first.transformation,
      input2: this.second.transformation,
      ...(keys ? { keyed: keys.k1, keyed2: keys.k2 } : {}),
    });
  }

  /**
   * Maps each input with its own function into one output type.
   * @example a.connect(b).map((x) => x.n, (y) => y.count)
   */
  map<O>(fn1: (value: A) => O, fn2: (value: B) => O): SingleOutputStreamOperator<O> {
    if (typeof fn1 !== 'function' || typeof fn2 !== 'function') throw new JobDefinitionError('connect(...).map expects two functions');
    const f: CoProcessFunction<A, B, O> = {
      processElement1: (v, _c, out) => out.collect(fn1(v)),
      processElement2: (v, _c, out) => out.collect(fn2(v)),
    };
    return this.process<O>(f).name('CoMap');
  }

  /**
   * Flat-maps each input with its own function into one output type.
   * @example a.connect(b).flatMap((x) => [x], (y) => y.items)
   */
  flatMap<O>(fn1: (value: A) => Iterable<O>, fn2: (value: B) => Iterable<O>): SingleOutputStreamOperator<O> {
    if (typeof fn1 !== 'function' || typeof fn2 !== 'function') throw new JobDefinitionError('connect(...).flatMap expects two functions');
    const f: CoProcessFunction<A, B, O> = {
      processElement1: (v, _c, out) => {
        for (const o of fn1(v)) out.collect(o);
      },
      processElement2: (v, _c, out) => {
        for (const o of fn2(v)) out.collect(o);
      },
    };
    return this.process<O>(f).name('CoFlatMap');
  }
}

/**
 * A stream broadcast to every subtask of the operator it is connected to, with the map state
 * descriptors of the broadcast state it maintains.
 * @example const rules = ruleStream.broadcast(new MapStateDescriptor<string, Rule>('rules'));
 */
export class BroadcastStream<T> {
  /** @internal phantom */
  declare readonly __type?: T;
  /** @internal */
  constructor(
    readonly env: StreamEnvironment,
    /** @internal */
    readonly transformation: Transformation,
    readonly descriptors: readonly MapStateDescriptor<any, any>[],
  ) {}
}

/**
 * A (keyed or non-keyed) stream connected to a broadcast stream.
 * @example events.keyBy('user').connect(rules).process<Alert>({ processElement(...) {...}, processBroadcastElement(...) {...} })
 */
export class BroadcastConnectedStream<A, B> {
  /** @internal */
  constructor(
    readonly env: StreamEnvironment,
    readonly first: DataStream<A>,
    readonly broadcast: BroadcastStream<B>,
  ) {}

  /**
   * Runs a {@link KeyedBroadcastProcessFunction} (first input keyed) or a
   * {@link BroadcastProcessFunction}. Every subtask applies every broadcast record, so the broadcast
   * state is the same everywhere — as long as `processBroadcastElement` is deterministic.
   */
  process<O>(fn: KeyedBroadcastProcessFunction<any, A, B, O> | BroadcastProcessFunction<A, B, O>): SingleOutputStreamOperator<O> {
    checkProcessFunction(fn, ['processElement', 'processBroadcastElement'], 'connect(broadcast).process');
    const key = (this.first as { keySelector?: KeySelectorSpec }).keySelector;
    const name = objectLabel(key ? 'KeyedBroadcastProcess' : 'BroadcastProcess', fn);
    return addOperatorTo<O>(this.env, name, () => new ProcessOperator({ shape: 'broadcast', fn, ...(key ? { key } : {}) }), {
      input: this.first.transformation,
      input2: this.broadcast.transformation,
      ...(key ? { keyed: key } : {}),
    });
  }
}
