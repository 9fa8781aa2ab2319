// The work queue behind every controller, after client-go's: a key is queued at most once (adds while it
// waits are merged), a key is never handed to two workers at once (an add while it is being processed
// marks it dirty and it is queued again when the worker is done), failures back off per key
// exponentially, and delayed adds run on the injected Clock so tests move time by hand.
import { systemClock, type Clock, type Timer } from '../lib/clock.js';

/** Hooks for queue metrics; prom-client wiring lives with the server. Every method is optional. */
export interface QueueMetrics {
  /** Called whenever the number of keys waiting for a worker changes. */
  depth?(queue: string, depth: number): void;
  /** Called for every accepted add (merged duplicates included, like client-go's adds_total). */
  add?(queue: string): void;
  /** Called for every rate-limited (backoff) requeue. */
  retry?(queue: string): void;
  /** Seconds a key waited in the queue before a worker took it. */
  queueLatency?(queue: string, seconds: number): void;
  /** Seconds a worker spent on one key. */
  workDuration?(queue: string, seconds: number): void;
}

export interface WorkQueueOptions {
  name?: string;
  clock?: Clock;
  /** First backoff delay in ms (default 5); doubles with every consecutive failure of a key. */
  baseDelayMs?: number;
  /** Backoff ceiling in ms (default 5 minutes). */
  maxDelayMs?: number;
  metrics?: QueueMetrics;
}

interface Waiting {
  at: number;
  timer: Timer;
}

export class WorkQueue {
  readonly name: string;
  private readonly clock: Clock;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly metrics?: QueueMetrics;

  private items: string[] = [];
  private head = 0;
  /** Keys that need processing: queued, or re-added while being processed. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly enqueuedAt = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly waiting = new Map<string, Waiting>();
  private getters: Array<(key: string | undefined) => void> = [];
  private workers: Promise<void>[] = [];
  private shuttingDown = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.name = opts.name ?? 'queue';
    this.clock = opts.clock ?? systemClock;
    this.baseDelayMs = opts.baseDelayMs ?? 5;
    this.maxDelayMs = opts.maxDelayMs ?? 5 * 60_000;
    this.metrics = opts.metrics;
  }

  /** Keys waiting for a worker (not counting delayed ones or those being processed). */
  get length(): number {
    return this.items.length - this.head;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    this.metrics?.add?.(this.name);
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    // A key being processed goes back in the queue when its worker calls done().
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Adds `key` after `ms`. If the key is already waiting to be added earlier, the earlier time wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + ms;
    const existing = this.waiting.get(key);
    if (existing && existing.at <= at) return;
    if (existing) this.clock.clearTimeout(existing.timer);
    const entry: Waiting = { at, timer: { id: undefined } };
    entry.timer = this.clock.setTimeout(() => {
      if (this.waiting.get(key) !== entry) return;
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    this.waiting.set(key, entry);
  }

  /** Requeues `key` after its backoff (base · 2^failures, capped) and returns that delay in ms. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
    this.metrics?.retry?.(this.name);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the backoff of `key` (call after a success). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How many consecutive rate-limited requeues `key` has had. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * The next key to process; resolves with undefined once the queue is shut down and drained.
   * Every key received must be handed back with done().
   */
  get(): Promise<string | undefined> {
    return new Promise((resolve) => {
      this.getters.push(resolve);
      this.pump();
    });
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) this.push(key);
    else this.pump();
  }

  /**
   * Starts `workers` loops that take keys and run `process` on them. `process` should handle its own
   * errors; anything it throws goes to `onError` and the worker carries on.
   */
  run(workers: number, process: (key: string) => Promise<void>, onError?: (key: string, err: unknown) => void): void {
    for (let i = 0; i < workers; i++) this.workers.push(this.worker(process, onError));
  }

  /**
   * Stops accepting keys and cancels delayed adds, then waits for the workers to finish. With
   * `drain` (the default) the keys already queued are still processed; without it they are dropped
   * and only the keys being processed are waited for.
   */
  async shutdown(opts: { drain?: boolean } = {}): Promise<void> {
    this.shuttingDown = true;
    for (const w of this.waiting.values()) this.clock.clearTimeout(w.timer);
    this.waiting.clear();
    if (opts.drain === false) {
      for (let i = this.head; i < this.items.length; i++) {
        this.dirty.delete(this.items[i]!);
        this.enqueuedAt.delete(this.items[i]!);
      }
      this.items = [];
      this.head = 0;
      // Keys re-added while being processed are dropped too.
      this.dirty.clear();
      this.reportDepth();
    }
    this.pump();
    await Promise.all(this.workers);
  }

  private async worker(process: (key: string) => Promise<void>, onError?: (key: string, err: unknown) => void): Promise<void> {
    for (;;) {
      const key = await this.get();
      if (key === undefined) return;
      const started = performance.now();
      try {
        await process(key);
      } catch (err) {
        onError?.(key, err);
      } finally {
        this.metrics?.workDuration?.(this.name, (performance.now() - started) / 1000);
        this.done(key);
      }
    }
  }

  private push(key: string): void {
    this.items.push(key);
    this.enqueuedAt.set(key, performance.now());
    this.reportDepth();
    this.pump();
  }

  /** Hands queued keys to waiting getters; releases the getters once shut down with nothing left. */
  private pump(): void {
    let handed = false;
    while (this.getters.length > 0 && this.length > 0) {
      const key = this.items[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      this.dirty.delete(key);
      this.processing.add(key);
      const t = this.enqueuedAt.get(key);
      this.enqueuedAt.delete(key);
      if (t !== undefined) this.metrics?.queueLatency?.(this.name, (performance.now() - t) / 1000);
      handed = true;
      this.getters.shift()!(key);
    }
    if (handed) this.reportDepth();
    // A key still being processed may be requeued by done(), so getters wait until nothing is in flight.
    if (this.shuttingDown && this.length === 0 && this.processing.size === 0) {
      for (const g of this.getters.splice(0)) g(undefined);
    }
  }

  private reportDepth(): void {
    this.metrics?.depth?.(this.name, this.length);
  }
}
