// Owns the heap keyed-state store: per operator and subtask, values by key, grouped by key group so
// that a snapshot (and a rescale) can take whole key groups.

import type { KeyedStateStore } from '../graph/operator.ts';

const TAG = '\u0000';

/**
 * A Map key for a JS key: primitives stand for themselves (SameValueZero: -0 = +0, NaN = NaN);
 * arrays, dates and byte arrays become a tagged string. Strings starting with the tag are escaped so
 * that no string can collide with a composite key.
 */
export function stateKeyOf(key: unknown): unknown {
  if (typeof key === 'string') return key.startsWith(TAG) ? TAG + key : key;
  if (key === null || typeof key !== 'object') return key === undefined ? null : key;
  return TAG + encodeComposite(key);
}

function encodeComposite(key: unknown): string {
  if (key === null || key === undefined) return 'n';
  switch (typeof key) {
    case 'string':
      return `s${key.length}:${key}`;
    case 'number':
      return `d${Object.is(key, -0) ? 0 : key};`;
    case 'bigint':
      return `i${key};`;
    case 'boolean':
      return key ? 't' : 'f';
  }
  if (Array.isArray(key)) return `[${key.map(encodeComposite).join('')}]`;
  if (key instanceof Date) return `D${key.getTime()};`;
  if (key instanceof Uint8Array) return `b${Array.from(key).join(',')};`;
  return `o${String(key)};`; // unreachable for hashable keys: hashing rejects these first
}

/**
 * Keyed state on the JS heap: `Map<keyGroup, Map<stateKey, { key, value }>>`. Cost: two hash-map
 * lookups per access; memory grows with the number of keys (the binary, budgeted backend comes later).
 */
export class HeapKeyedState<V> implements KeyedStateStore<V> {
  private readonly groups = new Map<number, Map<unknown, { key: unknown; value: V }>>();
  private count = 0;

  get(keyGroup: number, key: unknown): V | undefined {
    return this.groups.get(keyGroup)?.get(stateKeyOf(key))?.value;
  }

  set(keyGroup: number, key: unknown, value: V): void {
    let g = this.groups.get(keyGroup);
    if (!g) this.groups.set(keyGroup, (g = new Map()));
    const sk = stateKeyOf(key);
    const e = g.get(sk);
    if (e) e.value = value;
    else {
      g.set(sk, { key, value });
      this.count++;
    }
  }

  delete(keyGroup: number, key: unknown): void {
    const g = this.groups.get(keyGroup);
    if (g?.delete(stateKeyOf(key))) {
      this.count--;
      if (g.size === 0) this.groups.delete(keyGroup);
    }
  }

  get size(): number {
    return this.count;
  }

  /** Key groups holding state, ascending. */
  keyGroups(): number[] {
    return [...this.groups.keys()].sort((a, b) => a - b);
  }

  *entries(): IterableIterator<[number, unknown, V]> {
    for (const kg of this.keyGroups()) {
      for (const e of this.groups.get(kg)!.values()) yield [kg, e.key, e.value];
    }
  }
}
