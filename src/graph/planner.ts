// Owns the batch optimizer's decisions: from size estimates and the physical properties of the inputs
// (parallelism, hash partitioning, sort order), how each input of a join or group-by travels (ship
// strategy: forward, broadcast, hash repartition), how a join runs locally (hybrid hash or sort-merge)
// and which side builds; plus the text `explain()` shows for them, and the registry of what sources
// know about themselves (schema, row count, input bytes). The decisions are pure functions over plain
// data, tested on their own; src/api/batch.ts feeds them from the transformations when the plan is
// built and turns their answers into edges and operators.
//
// Cost model (Flink's optimizer in miniature): the cost of a ship strategy is the bytes (else rows) it
// moves between subtasks — forward 0, hash repartition |side|, broadcast |side| × parallelism. An input
// already hash-partitioned by (a subset of) the keys at the consumer's parallelism moves nothing, and
// its partner is then partitioned the same way. Unknown sizes choose repartitioning (never a broadcast
// of something that may be huge). Local strategy: sort-merge when both inputs arrive sorted on the keys
// (their sort is reused) or both are larger than the job's managed memory; hybrid hash otherwise,
// building on the smaller side.

import { JobDefinitionError } from '../core/errors.ts';
import type { Schema } from '../core/schema.ts';

/** SQL join types; `semi` / `anti` keep left records with (without) a partner. */
export type JoinKind = 'inner' | 'left' | 'right' | 'full' | 'semi' | 'anti';

/** What is known of a stream's size; every field optional (unknown). Estimates are upper bounds. */
export interface SizeEstimate {
  readonly rows?: number;
  readonly bytes?: number;
}

/** One field of a sort order. */
export interface SortField {
  readonly field: string;
  readonly desc: boolean;
  readonly nullsFirst: boolean;
}

/** The physical properties of a stream where an operator reads it. */
export interface PhysicalProps {
  /**
   * Subtasks producing it, or `edge`: the stream is an explicit hash edge (`keyBy`) that partitions
   * for whichever operator consumes it, at that operator's parallelism.
   */
  readonly parallelism: number | 'edge';
  /** Hash-partitioned by the key made of these fields, in this order (one field: the field's value). */
  readonly partitionedBy?: readonly string[];
  /** Records within each partition come in this order. */
  readonly sortedBy?: readonly SortField[];
  readonly estimate: SizeEstimate;
  /** Estimated bytes of one binary row (to turn a row count into bytes). */
  readonly rowBytes?: number;
}

/** How an input travels to the operator. `forward` keeps whatever partitioning the input has. */
export type Ship =
  | { readonly kind: 'forward'; readonly reused?: readonly string[] }
  | { readonly kind: 'broadcast' }
  | { readonly kind: 'hash'; readonly fields: readonly string[] };

/** Local join strategies. */
export type LocalJoinStrategy = 'hybrid-hash' | 'sort-merge';

/** Hints that override the optimizer's choices (Flink's JoinHint). */
export interface JoinHints {
  /** Broadcast one side (the other is forwarded) or hash-repartition both. */
  ship?: 'broadcast-left' | 'broadcast-right' | 'repartition';
  /** Hybrid hash join or sort-merge join. */
  local?: LocalJoinStrategy;
  /** The side a hybrid hash join builds its table on (sort-merge: the side whose key groups it buffers). */
  build?: 'left' | 'right';
}

/** What the optimizer decided for a join. */
export interface JoinStrategy {
  readonly local: LocalJoinStrategy;
  /**
   * The side a hybrid hash join builds on (a sort-merge join: whose key groups it buffers);
   * `smaller`: no estimates, so each subtask takes the input of fewer bytes it actually received.
   */
  readonly buildSide: 'left' | 'right' | 'smaller';
  readonly left: Ship;
  readonly right: Ship;
  /** Inputs that arrive sorted on the join keys (a sort-merge join does not sort them again). */
  readonly sorted: { readonly left: boolean; readonly right: boolean };
  /** Key order of a sort-merge join, per key (ascending, nulls last unless a sorted input says otherwise). */
  readonly order: readonly { readonly desc: boolean; readonly nullsFirst: boolean }[];
  /** Why, in words (for tests and explain output). */
  readonly reasons: readonly string[];
}

/** The input of {@link planJoinStrategy}. */
export interface JoinPlanInput {
  readonly type: JoinKind;
  readonly left: PhysicalProps;
  readonly right: PhysicalProps;
  readonly leftKeys: readonly string[];
  readonly rightKeys: readonly string[];
  /** Parallelism of the join. */
  readonly parallelism: number;
  /** The job's managed-memory budget in bytes ("both sides huge" is relative to it). */
  readonly managedMemoryBytes: number;
  readonly hints?: JoinHints;
}

/** Bytes of a stream if known (else rows × rowBytes, else undefined). */
export function estimatedBytes(p: PhysicalProps): number | undefined {
  const e = p.estimate;
  if (e.bytes !== undefined) return e.bytes;
  if (e.rows !== undefined && p.rowBytes !== undefined) return e.rows * p.rowBytes;
  return undefined;
}

/** Sizes of two streams in one unit (bytes if both are known, else rows), or undefined. */
export function comparableSizes(a: PhysicalProps, b: PhysicalProps): { a: number; b: number; unit: 'bytes' | 'rows' } | undefined {
  const ab = estimatedBytes(a);
  const bb = estimatedBytes(b);
  if (ab !== undefined && bb !== undefined) return { a: ab, b: bb, unit: 'bytes' };
  if (a.estimate.rows !== undefined && b.estimate.rows !== undefined) return { a: a.estimate.rows, b: b.estimate.rows, unit: 'rows' };
  return undefined;
}

/**
 * Key positions by which `p` is already partitioned for a consumer at `parallelism`: every field of
 * its partitioning is one of `keys` (positions in partitioning order), or undefined when it is not.
 */
export function reusablePartitioning(p: PhysicalProps, keys: readonly string[], parallelism: number): number[] | undefined {
  const by = p.partitionedBy;
  if (!by || by.length === 0) return undefined;
  if (p.parallelism !== 'edge' && p.parallelism !== parallelism) return undefined;
  const pos = by.map((f) => keys.indexOf(f));
  if (pos.some((i) => i < 0) || new Set(pos).size !== pos.length) return undefined;
  return pos;
}

/** The sort order of `p` on `keys` where the operator reads it through `ship`, or undefined. */
function sortedOn(p: PhysicalProps, keys: readonly string[], ship: Ship, parallelism: number): SortField[] | undefined {
  // a sort order survives only a forward edge between subtasks of equal number (one producer each)
  if (ship.kind !== 'forward' || p.parallelism !== parallelism) return undefined;
  const s = p.sortedBy;
  if (!s || s.length < keys.length) return undefined;
  for (let i = 0; i < keys.length; i++) if (s[i]!.field !== keys[i]) return undefined;
  return s.slice(0, keys.length);
}

const sameOrder = (a: readonly SortField[], b: readonly SortField[]): boolean =>
  a.length === b.length && a.every((x, i) => x.desc === b[i]!.desc && x.nullsFirst === b[i]!.nullsFirst);

const fmt = (n: number, unit: string): string => `${Math.round(n).toLocaleString('en-US')} ${unit}`;

interface ShipOption {
  name: string;
  left: Ship;
  right: Ship;
  /** Moved size, or undefined when a size it needs is unknown. */
  cost: number | undefined;
  buildSide?: 'left' | 'right';
}

/**
 * Chooses ship strategies, the local strategy and the build side of a join (see the file comment for
 * the cost model). Pure; throws JobDefinitionError for a hint the join type cannot honour (broadcasting
 * the side an outer join must keep whole).
 *
 * @example
 * planJoinStrategy({ type: 'inner', leftKeys: ['user'], rightKeys: ['id'], parallelism: 4, managedMemoryBytes: 256 << 20,
 *   left: { parallelism: 4, estimate: { rows: 1e6 } }, right: { parallelism: 4, estimate: { rows: 1000 } } });
 * // { local: 'hybrid-hash', buildSide: 'right', left: { kind: 'forward' }, right: { kind: 'broadcast' }, ... }
 */
export function planJoinStrategy(input: JoinPlanInput): JoinStrategy {
  const { type, left, right, leftKeys, rightKeys, parallelism: p, hints = {} } = input;
  if (leftKeys.length === 0 || leftKeys.length !== rightKeys.length) {
    throw new JobDefinitionError(`a join needs the same number (≥ 1) of left and right key fields, got ${leftKeys.length} and ${rightKeys.length}`);
  }
  const reasons: string[] = [];
  const canBroadcastRight = type === 'inner' || type === 'left' || type === 'semi' || type === 'anti';
  const canBroadcastLeft = type === 'inner' || type === 'right';
  if (hints.ship === 'broadcast-right' && !canBroadcastRight) {
    throw new JobDefinitionError(`a ${type} join cannot broadcast its right input: every subtask would emit the right records without a partner`);
  }
  if (hints.ship === 'broadcast-left' && !canBroadcastLeft) {
    throw new JobDefinitionError(`a ${type} join cannot broadcast its left input: every subtask would emit the left records without a partner`);
  }
  const sizes = comparableSizes(left, right);
  const forward: Ship = { kind: 'forward' };
  // moving a side forward costs nothing at equal parallelism (an explicit keyBy edge moves it anyway, whatever we pick)
  const stays = (s: PhysicalProps, size: number) => (s.parallelism === p || s.parallelism === 'edge' ? 0 : size);

  let chosen: ShipOption;
  if (p === 1 && hints.ship === undefined) {
    chosen = { name: 'single', left: forward, right: forward, cost: 0 };
    reasons.push('parallelism 1: every record meets in one subtask');
  } else {
    // repartition, reusing an existing partitioning of either side
    const lp = reusablePartitioning(left, leftKeys, p);
    const rp = reusablePartitioning(right, rightKeys, p);
    let rep: ShipOption;
    const at = (keys: readonly string[], pos: readonly number[]) => pos.map((i) => keys[i]!);
    const all = leftKeys.map((_, i) => i);
    if (lp && rp && lp.join() === rp.join()) {
      rep = { name: 'reuse both', left: { kind: 'forward', reused: at(leftKeys, lp) }, right: { kind: 'forward', reused: at(rightKeys, rp) }, cost: 0 };
    } else if (lp) {
      rep = { name: 'reuse left', left: { kind: 'forward', reused: at(leftKeys, lp) }, right: { kind: 'hash', fields: at(rightKeys, lp) }, cost: sizes?.b };
    } else if (rp) {
      rep = { name: 'reuse right', left: { kind: 'hash', fields: at(leftKeys, rp) }, right: { kind: 'forward', reused: at(rightKeys, rp) }, cost: sizes?.a };
    } else {
      rep = { name: 'repartition', left: { kind: 'hash', fields: at(leftKeys, all) }, right: { kind: 'hash', fields: at(rightKeys, all) }, cost: sizes ? sizes.a + sizes.b : undefined };
    }
    const options: ShipOption[] = [rep];
    if (canBroadcastRight) {
      options.push({ name: 'broadcast right', left: forward, right: { kind: 'broadcast' }, cost: sizes ? stays(left, sizes.a) + sizes.b * p : undefined, buildSide: 'right' });
    }
    if (canBroadcastLeft) {
      options.push({ name: 'broadcast left', left: { kind: 'broadcast' }, right: forward, cost: sizes ? sizes.a * p + stays(right, sizes.b) : undefined, buildSide: 'left' });
    }
    if (hints.ship !== undefined) {
      const want = hints.ship === 'repartition' ? rep.name : hints.ship.replace('-', ' ');
      chosen = options.find((o) => o.name === want)!;
      reasons.push(`ship hint: ${hints.ship}`);
    } else if (!sizes) {
      chosen = rep;
      reasons.push(rep.cost === 0 ? 'both inputs already partitioned by the keys' : 'input sizes unknown: repartition (never broadcast what may be large)');
    } else {
      chosen = rep;
      for (const o of options) if (o.cost !== undefined && chosen.cost !== undefined && o.cost < chosen.cost) chosen = o;
      reasons.push(
        `moves ${fmt(chosen.cost ?? 0, sizes.unit)} (${options.map((o) => `${o.name} ${o.cost === undefined ? '?' : fmt(o.cost, sizes.unit)}`).join(', ')})`,
      );
    }
  }

  // local strategy
  const sl = sortedOn(left, leftKeys, chosen.left, p);
  const sr = sortedOn(right, rightKeys, chosen.right, p);
  let local: LocalJoinStrategy;
  let sortedLeft = false;
  let sortedRight = false;
  let order: SortField[] | undefined;
  if (hints.local !== undefined) {
    local = hints.local;
    reasons.push(`local hint: ${hints.local}`);
  } else if (sl && sr && sameOrder(sl, sr)) {
    local = 'sort-merge';
    reasons.push('both inputs arrive sorted on the keys: sort-merge without sorting');
  } else {
    const lb = estimatedBytes(left);
    const rb = estimatedBytes(right);
    if (lb !== undefined && rb !== undefined && Math.min(lb, rb) > input.managedMemoryBytes) {
      local = 'sort-merge';
      reasons.push(`both inputs (${fmt(lb, 'bytes')}, ${fmt(rb, 'bytes')}) exceed the job's managed memory (${fmt(input.managedMemoryBytes, 'bytes')})`);
    } else {
      local = 'hybrid-hash';
    }
  }
  if (local === 'sort-merge') {
    // reuse the order of the sorted input(s); both must then be in that order
    if (sl && sr && sameOrder(sl, sr)) {
      sortedLeft = sortedRight = true;
      order = sl;
    } else if (sl) {
      sortedLeft = true;
      order = sl;
    } else if (sr) {
      sortedRight = true;
      order = sr;
    }
  }
  let buildSide: 'left' | 'right' | 'smaller';
  if (hints.build !== undefined) buildSide = hints.build;
  else if (chosen.buildSide !== undefined) buildSide = chosen.buildSide;
  else if (sizes) buildSide = sizes.a < sizes.b ? 'left' : 'right';
  else buildSide = 'smaller';
  if (local === 'hybrid-hash' && hints.build === undefined && chosen.buildSide === undefined) {
    reasons.push(sizes ? `build on the smaller input (${buildSide})` : 'sizes unknown: each subtask builds on the smaller input it received');
  }
  return {
    local,
    buildSide,
    left: chosen.left,
    right: chosen.right,
    sorted: { left: sortedLeft, right: sortedRight },
    order: order ? order.map((s) => ({ desc: s.desc, nullsFirst: s.nullsFirst })) : leftKeys.map(() => ({ desc: false, nullsFirst: false })),
    reasons,
  };
}

/** What the optimizer decided for a group-by (aggregate, distinct). */
export interface GroupByStrategy {
  readonly ship: Ship;
  readonly reasons: readonly string[];
}

/**
 * Ship strategy of a group-by on `keys` at `parallelism`: forward when the input is already
 * hash-partitioned by a subset of the keys at that parallelism (every group is then whole in one
 * subtask), or at parallelism 1; else hash by the keys. A global aggregate (no keys) must run at
 * parallelism 1.
 *
 * @example
 * planGroupBy({ input: { parallelism: 'edge', partitionedBy: ['sym'], estimate: {} }, keys: ['sym', 'day'], parallelism: 2 })
 * // { ship: { kind: 'forward', reused: ['sym'] }, ... }
 */
export function planGroupBy(input: { readonly input: PhysicalProps; readonly keys: readonly string[]; readonly parallelism: number }): GroupByStrategy {
  const { keys, parallelism: p } = input;
  if (keys.length === 0) {
    if (p !== 1) throw new JobDefinitionError(`an aggregate without group keys runs at parallelism 1, not ${p}`);
    return { ship: { kind: 'forward' }, reasons: ['global aggregate: one subtask'] };
  }
  if (p === 1) return { ship: { kind: 'forward' }, reasons: ['parallelism 1: every group is in one subtask'] };
  const pos = reusablePartitioning(input.input, keys, p);
  if (pos) {
    const reused = pos.map((i) => keys[i]!);
    return { ship: { kind: 'forward', reused }, reasons: [`input already partitioned by ${reused.join(', ')}`] };
  }
  return { ship: { kind: 'hash', fields: keys }, reasons: ['repartition by the group keys'] };
}

/** `HASH`, `BROADCAST right`, `HASH right, reuse left` … — the ship strategies of a two-input operator. */
export function describeShip(left: Ship, right: Ship): string {
  const reused = (s: Ship) => (s.kind === 'forward' && s.reused ? s.reused : undefined);
  if (left.kind === 'broadcast') return 'BROADCAST left';
  if (right.kind === 'broadcast') return 'BROADCAST right';
  if (left.kind === 'hash' && right.kind === 'hash') return 'HASH';
  const lr = reused(left);
  const rr = reused(right);
  if (lr && rr) return `FORWARD (reuse HASH(${lr.join(', ')}) / HASH(${rr.join(', ')}))`;
  if (lr && right.kind === 'hash') return `HASH right, reuse left HASH(${lr.join(', ')})`;
  if (rr && left.kind === 'hash') return `HASH left, reuse right HASH(${rr.join(', ')})`;
  return 'FORWARD';
}

/**
 * The operator name `explain()` shows for a planned join, e.g.
 * `HybridHashJoin(inner, build=right, ship=BROADCAST right)` or
 * `SortMergeJoin(left, user = id, ship=HASH, sorted=left)` (with `on`).
 */
export function describeJoin(type: JoinKind, s: JoinStrategy, on?: string): string {
  const head = on ? `${type}, ${on}` : type;
  const ship = `ship=${describeShip(s.left, s.right)}`;
  if (s.local === 'hybrid-hash') return `HybridHashJoin(${head}, build=${s.buildSide}, ${ship})`;
  const sorted = s.sorted.left && s.sorted.right ? ', sorted=both' : s.sorted.left ? ', sorted=left' : s.sorted.right ? ', sorted=right' : '';
  return `SortMergeJoin(${head}, ${ship}${sorted})`;
}

/** `ship=HASH(k)` / `ship=FORWARD (reuse HASH(k))` / `ship=FORWARD` for a one-input operator. */
export function describeOneShip(s: Ship): string {
  if (s.kind === 'hash') return `ship=HASH(${s.fields.join(', ')})`;
  if (s.kind === 'broadcast') return 'ship=BROADCAST';
  return s.reused ? `ship=FORWARD (reuse HASH(${s.reused.join(', ')}))` : 'ship=FORWARD';
}

// ---------------------------------------------------------------------------------------------
// What sources know about themselves

/** Facts a source (or the API, for `withSchema`) records about the stream a transformation produces. */
export interface StreamFacts {
  /** The records' schema (CSV / NDJSON sources, `withSchema`). */
  readonly schema?: Schema;
  /** Number of records (collection and generator sources). */
  readonly rows?: number;
  /** Bytes of input (file sources reading in-memory text or bytes). */
  readonly bytes?: number;
}

const facts = new WeakMap<object, StreamFacts>();

/**
 * Records facts about the stream of `stream.transformation` (merged with what is known already), and
 * returns `stream`. For file sources, pass `inputs`: the bytes of in-memory inputs are summed (paths
 * stay unknown: their size is not known without I/O when the plan is made).
 *
 * @example
 * return recordStreamFacts(this.addSource(spec, name), { rows: items.length });
 */
export function recordStreamFacts<S extends { readonly transformation: object }>(
  stream: S,
  f: StreamFacts & { readonly inputs?: readonly ({ readonly kind: string; readonly bytes?: Uint8Array })[] },
): S {
  const { inputs, ...rest } = f;
  let bytes = rest.bytes;
  if (inputs && bytes === undefined && inputs.length > 0 && inputs.every((i) => i.kind === 'bytes' && i.bytes instanceof Uint8Array)) {
    bytes = inputs.reduce((s, i) => s + i.bytes!.length, 0);
  }
  const prev = facts.get(stream.transformation) ?? {};
  facts.set(stream.transformation, { ...prev, ...rest, ...(bytes !== undefined ? { bytes } : {}) });
  return stream;
}

/** What was recorded about the stream of transformation `t`, if anything. */
export function streamFacts(t: object): StreamFacts | undefined {
  return facts.get(t);
}
