// Watch fan-out shared by the Store backends: a Watcher is one watch's position and start-up buffer, the
// WatchHub matches a batch of events to watchers by prefix. Backends decide *what* is delivered and when
// (SQLite: right after its own COMMIT; PostgreSQL: its feed of the shared log); this only fans it out in order.

import type { StoreEvent, WatchOptions } from './types.js';


/**
 * One watch: a position (the last revision delivered) and, until its first turn, a buffer holding the replay
 * and any live batches committed meanwhile, so that everything arrives in order after `watch()` resolved.
 */
export class Watcher {
  private buffer: StoreEvent[][] | undefined = [];
  private failure: Error | undefined;
  private stopped = false;

  constructor(
    readonly prefix: string,
    private readonly opts: WatchOptions,
    /** Events at or below this revision were already delivered (or predate the watch). */
    private position: number,
    private readonly hub: WatchHub,
  ) {}

  push(events: readonly StoreEvent[]): void {
    if (this.stopped) return;
    // A watcher registered during a broadcast, or replayed up to the revision being broadcast, skips what it has.
    let batch = events;
    if (batch[0].kv.modRevision <= this.position) {
      batch = batch.filter((e) => e.kv.modRevision > this.position);
      if (batch.length === 0) return;
    }
    this.position = batch[batch.length - 1].kv.modRevision;
    if (this.buffer) this.buffer.push(batch as StoreEvent[]);
    else this.deliver(batch as StoreEvent[]);
  }

  /**
   * Puts a replay before everything buffered so far (for a backend whose replay is read after registering, so
   * that live batches arriving meanwhile are not lost). Only before startLive(); the position is unchanged,
   * since live batches already moved it past the replay.
   */
  prepend(events: StoreEvent[]): void {
    if (this.stopped || !this.buffer || events.length === 0) return;
    this.buffer.unshift(events);
  }

  startLive(): void {
    const buffered = this.buffer ?? [];
    this.buffer = undefined;
    for (const batch of buffered) {
      if (this.stopped) return;
      this.deliver(batch);
    }
    if (this.failure) this.fail(this.failure);
  }

  fail(err: Error): void {
    if (this.stopped) return;
    if (this.buffer) {
      this.failure = err;
      return;
    }
    this.cancel();
    this.opts.onError?.(err);
  }

  cancel(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.buffer = undefined;
    this.hub.remove(this);
  }

  private deliver(batch: StoreEvent[]): void {
    if (this.stopped) return;
    try {
      this.opts.onEvents(batch);
    } catch (err) {
      // A consumer that throws may have lost events: end its watch loudly rather than continue with a gap.
      this.cancel();
      this.opts.onError?.(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/**
 * Watchers grouped by prefix. A batch is matched per event by looking up the event key's own prefixes of the
 * lengths in use (a handful in practice), so the cost is O(events x distinct prefix lengths) however many
 * watchers there are; each group then gets one shared, frozen array per batch.
 */
export class WatchHub {
  private readonly groups = new Map<string, Set<Watcher>>();
  /** Distinct prefix length -> how many groups have it. */
  private readonly lengths = new Map<number, number>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(w: Watcher): void {
    let group = this.groups.get(w.prefix);
    if (!group) {
      group = new Set();
      this.groups.set(w.prefix, group);
      this.lengths.set(w.prefix.length, (this.lengths.get(w.prefix.length) ?? 0) + 1);
    }
    group.add(w);
    this.count++;
  }

  remove(w: Watcher): void {
    const group = this.groups.get(w.prefix);
    if (!group || !group.delete(w)) return;
    this.count--;
    if (group.size > 0) return;
    this.groups.delete(w.prefix);
    const n = this.lengths.get(w.prefix.length)! - 1;
    if (n === 0) this.lengths.delete(w.prefix.length);
    else this.lengths.set(w.prefix.length, n);
  }

  broadcast(events: StoreEvent[]): void {
    if (this.count === 0) return;
    const matched = new Map<string, StoreEvent[]>();
    for (const ev of events) {
      const key = ev.kv.key;
      for (const len of this.lengths.keys()) {
        if (len > key.length) continue;
        const p = len === key.length ? key : key.slice(0, len);
        if (!this.groups.has(p)) continue;
        const list = matched.get(p);
        if (list) list.push(ev);
        else matched.set(p, [ev]);
      }
    }
    for (const [p, batch] of matched) {
      Object.freeze(batch);
      // Copy: a callback may cancel watchers or add new ones while we iterate.
      for (const w of [...this.groups.get(p)!]) w.push(batch);
    }
  }

  closeAll(err: Error): void {
    for (const group of [...this.groups.values()]) for (const w of [...group]) w.fail(err);
  }
}
