// Owns state time-to-live: the configuration (Flink's StateTtlConfig) and the expiry rules every
// backend applies. Timestamps come from the backend's injectable clock, never from Date.now directly.

/** When an entry's last-access timestamp is refreshed. */
export type TtlUpdateType = 'OnCreateAndWrite' | 'OnReadAndWrite';

/** Whether a read may still see an entry that has expired but has not been removed yet. */
export type TtlStateVisibility = 'NeverReturnExpired' | 'ReturnExpiredIfNotCleanedUp';

/**
 * Time-to-live of a state's entries. An entry written (or, with `OnReadAndWrite`, read) at `t`
 * expires at `t + ttl`: from then on a read does not see it (`NeverReturnExpired`) or sees it once
 * more (`ReturnExpiredIfNotCleanedUp`) — either way the read removes it (cleanup on read). Expired
 * entries are also removed by incremental cleanup (`cleanupIncrementally(n)`: each state access
 * inspects the next `n` entries of that state, wrapping round) and left out of snapshots
 * (`cleanupFullSnapshot()`; on by default). List state expires element by element, map state entry
 * by entry (as in Flink).
 *
 * @example
 * const ttl = StateTtlConfig.newBuilder(60_000)
 *   .setUpdateType('OnReadAndWrite')
 *   .setStateVisibility('NeverReturnExpired')
 *   .cleanupIncrementally(10)
 *   .build();
 * const seen = new ValueStateDescriptor<number>('seen').enableTimeToLive(ttl);
 */
export class StateTtlConfig {
  private constructor(
    /** Time to live in milliseconds (of the backend's clock). */
    readonly ttl: number,
    readonly updateType: TtlUpdateType,
    readonly stateVisibility: TtlStateVisibility,
    /** Entries inspected per state access by incremental cleanup; 0 = off. */
    readonly incrementalCleanupSize: number,
    /** Leave expired entries out of snapshots. */
    readonly cleanupFullSnapshot: boolean,
  ) {}

  static newBuilder(ttlMs: number): StateTtlConfigBuilder {
    return new StateTtlConfigBuilder(ttlMs);
  }

  /** @internal */
  static create(b: { ttl: number; updateType: TtlUpdateType; visibility: TtlStateVisibility; incremental: number; fullSnapshot: boolean }): StateTtlConfig {
    return new StateTtlConfig(b.ttl, b.updateType, b.visibility, b.incremental, b.fullSnapshot);
  }

  /** Whether an entry last touched at `ts` has expired at `now`. */
  isExpired(ts: number, now: number): boolean {
    return ts + this.ttl <= now;
  }

  get updateOnRead(): boolean {
    return this.updateType === 'OnReadAndWrite';
  }

  get returnExpired(): boolean {
    return this.stateVisibility === 'ReturnExpiredIfNotCleanedUp';
  }
}

/** Builds a {@link StateTtlConfig}. Defaults: OnCreateAndWrite, NeverReturnExpired, full-snapshot cleanup. */
export class StateTtlConfigBuilder {
  private updateType: TtlUpdateType = 'OnCreateAndWrite';
  private visibility: TtlStateVisibility = 'NeverReturnExpired';
  private incremental = 0;
  private fullSnapshot = true;

  constructor(private ttl: number) {
    checkTtl(ttl);
  }
  setTtl(ttlMs: number): this {
    checkTtl(ttlMs);
    this.ttl = ttlMs;
    return this;
  }
  setUpdateType(t: TtlUpdateType): this {
    if (t !== 'OnCreateAndWrite' && t !== 'OnReadAndWrite') throw new RangeError(`unknown TTL update type '${String(t)}'`);
    this.updateType = t;
    return this;
  }
  updateTtlOnCreateAndWrite(): this {
    return this.setUpdateType('OnCreateAndWrite');
  }
  updateTtlOnReadAndWrite(): this {
    return this.setUpdateType('OnReadAndWrite');
  }
  setStateVisibility(v: TtlStateVisibility): this {
    if (v !== 'NeverReturnExpired' && v !== 'ReturnExpiredIfNotCleanedUp') throw new RangeError(`unknown TTL state visibility '${String(v)}'`);
    this.visibility = v;
    return this;
  }
  neverReturnExpired(): this {
    return this.setStateVisibility('NeverReturnExpired');
  }
  returnExpiredIfNotCleanedUp(): this {
    return this.setStateVisibility('ReturnExpiredIfNotCleanedUp');
  }
  /** Each access to the state also inspects the next `entries` entries and removes the expired ones. */
  cleanupIncrementally(entries: number): this {
    if (!(Number.isInteger(entries) && entries >= 0)) throw new RangeError(`incremental cleanup size must be a non-negative integer, got ${entries}`);
    this.incremental = entries;
    return this;
  }
  /** Leave expired entries out of snapshots (the default). */
  cleanupFullSnapshot(on = true): this {
    this.fullSnapshot = on;
    return this;
  }
  /** Keep expired entries in snapshots (they are still filtered on read after restore). */
  disableCleanupInBackground(): this {
    this.incremental = 0;
    this.fullSnapshot = false;
    return this;
  }
  build(): StateTtlConfig {
    return StateTtlConfig.create({ ttl: this.ttl, updateType: this.updateType, visibility: this.visibility, incremental: this.incremental, fullSnapshot: this.fullSnapshot });
  }
}

function checkTtl(ms: number): void {
  if (!(typeof ms === 'number' && ms > 0 && Number.isFinite(ms))) throw new RangeError(`TTL must be a positive, finite number of milliseconds, got ${ms}`);
}

/** A clock in milliseconds; backends default to `Date.now`. */
export type StateClock = () => number;
