// The reconcile loop, in controller-runtime's spirit: informers turn events into keys, a work queue
// deduplicates them, N workers call `reconcile(key)`, and the result decides what happens next: done,
// again after a delay, or an error (retried with per-key exponential backoff unless terminal). The key
// is all a reconciler gets: it reads the current state itself, so it is correct whichever events it missed.
import { systemClock, type Clock } from '../lib/clock.js';
import { isApiError } from '../lib/errors.js';
import type { StoredObject } from '../kinds/types.js';
import { objectKey } from './cache.js';
import { isFenced } from './fencing.js';
import type { Informer } from './informer.js';
import { childLogger, silentLogger, type Logger } from './logger.js';
import { WorkQueue, type QueueMetrics } from './workqueue.js';

export type Result = { done: true } | { after: number } | { error: Error; terminal?: boolean };

export interface Reconciler {
  reconcile(key: string): Promise<Result>;
}

export const done: Result = Object.freeze({ done: true as const });

export function requeueAfter(ms: number): Result {
  return { after: ms };
}

export function failed(error: Error, terminal = false): Result {
  return terminal ? { error, terminal } : { error };
}

/** Throw this from a reconciler for an error that retrying cannot fix (it is logged, not retried). */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

export type ReconcileOutcome = 'success' | 'requeue_after' | 'error' | 'terminal_error';

/** Hooks for reconcile metrics (prom-client wiring lives with the server). */
export interface ControllerMetrics {
  observeReconcile(controller: string, outcome: ReconcileOutcome, durationSeconds: number): void;
}

export type WatchEvent = 'add' | 'update' | 'delete';

/**
 * Maps a changed object to the keys of the controller's primary objects to reconcile. For updates it is
 * called with the new and with the old object, so a reference that was removed still enqueues its target.
 */
export type EventMapper = (obj: StoredObject, event: WatchEvent) => Iterable<string>;

export interface Watch {
  informer: Informer;
  /** Default: the object's own key (for the controller's primary kind). */
  map?: EventMapper;
}

export interface ControllerOptions {
  name: string;
  reconciler: Reconciler;
  watches: Watch[];
  /** Concurrent reconciles (default 1). One key never runs on two workers at once. */
  workers?: number;
  clock?: Clock;
  logger?: Logger;
  metrics?: ControllerMetrics;
  queueMetrics?: QueueMetrics;
  /** Backoff of failing keys: base (default 5 ms) doubling up to max (default 5 min). */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** Maps an object to its own key. */
export const enqueueSelf: EventMapper = (obj) => [objectKey(obj)];

/**
 * Maps an object to the keys of its owners of one kind (e.g. a Workflow event → its Device). A
 * namespaced owner lives in the dependent's namespace; a cluster-scoped one has no namespace.
 */
export function enqueueOwners(owner: { group: string; kind: string; scope: 'Namespaced' | 'Cluster' }, opts: { controllerOnly?: boolean } = {}): EventMapper {
  return (obj) => {
    const keys: string[] = [];
    for (const ref of obj.metadata.ownerReferences ?? []) {
      if (ref.kind !== owner.kind || groupOf(ref.apiVersion) !== owner.group) continue;
      if (opts.controllerOnly && !ref.controller) continue;
      const ns = owner.scope === 'Namespaced' ? obj.metadata.namespace : undefined;
      if (owner.scope === 'Namespaced' && !ns) continue;
      keys.push(ns ? `${ns}/${ref.name}` : ref.name);
    }
    return keys;
  };
}

/** The API group of an apiVersion (`metalplane.dev/v1alpha1` → `metalplane.dev`, `v1` → ''). */
export function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly opts: ControllerOptions;
  private readonly log: Logger;
  private removers: Array<() => void> = [];
  private started = false;
  private stopped = false;

  constructor(opts: ControllerOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.log = childLogger(opts.logger ?? silentLogger, { controller: opts.name });
    this.queue = new WorkQueue({
      name: opts.name,
      clock: opts.clock ?? systemClock,
      baseDelayMs: opts.baseDelayMs,
      maxDelayMs: opts.maxDelayMs,
      metrics: opts.queueMetrics,
    });
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  enqueueAfter(key: string, ms: number): void {
    this.queue.addAfter(key, ms);
  }

  /**
   * Registers the event handlers, starts the informers (idempotent: shared ones may already run), waits
   * for them to sync and then starts the workers. Resolves once the workers run.
   */
  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    for (const w of this.opts.watches) {
      const map = w.map ?? enqueueSelf;
      const enqueue = (obj: StoredObject, event: WatchEvent): void => {
        for (const key of map(obj, event)) this.queue.add(key);
      };
      this.removers.push(
        w.informer.addHandler({
          onAdd: (obj) => enqueue(obj, 'add'),
          onUpdate: (old, obj) => {
            enqueue(obj, 'update');
            if (old !== obj) enqueue(old, 'update');
          },
          onDelete: (obj) => enqueue(obj, 'delete'),
        }),
      );
      w.informer.start();
    }
    try {
      await Promise.all(this.opts.watches.map((w) => w.informer.waitForSync()));
    } catch (err) {
      if (this.stopped) return;
      throw err;
    }
    if (this.stopped) return;
    this.log.info({ workers: this.opts.workers ?? 1 }, 'caches synced; starting workers');
    this.queue.run(this.opts.workers ?? 1, (key) => this.process(key), (key, err) =>
      this.log.error({ key, err }, 'worker failed'),
    );
  }

  /**
   * Stops taking new keys and waits for the reconciles in flight. Queued keys are dropped: whoever
   * starts the controller again (e.g. the next leader) will see every object on its initial sync.
   * Informers are not stopped: they may be shared; stop them where they were made.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const r of this.removers.splice(0)) r();
    await this.queue.shutdown({ drain: false });
  }

  private async process(key: string): Promise<void> {
    const started = performance.now();
    let result: Result;
    try {
      result = await this.opts.reconciler.reconcile(key);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      result = { error, terminal: err instanceof TerminalError };
    }
    let outcome: ReconcileOutcome;
    if ('done' in result) {
      this.queue.forget(key);
      outcome = 'success';
    } else if ('after' in result) {
      this.queue.forget(key);
      this.queue.addAfter(key, result.after);
      outcome = 'requeue_after';
    } else if (isFenced(result.error)) {
      // This replica lost its lease (the elector stops the controllers): the next leader reconciles the key, and
      // a retry here could only be refused again. The elector logs the loss once; this is per key.
      this.queue.forget(key);
      this.log.debug({ key, err: result.error }, 'reconcile fenced off: this replica lost its lease; not retrying');
      outcome = 'error';
    } else if (result.terminal) {
      this.queue.forget(key);
      this.log.error({ key, err: result.error }, 'reconcile failed with a terminal error; not retrying');
      outcome = 'terminal_error';
    } else {
      const retries = this.queue.numRequeues(key);
      const delayMs = this.queue.addRateLimited(key);
      // Conflicts are the normal price of optimistic concurrency: the retry reads the newer version.
      const conflict = isApiError(result.error) && result.error.code === 409;
      this.log[conflict ? 'debug' : 'error']({ key, err: result.error, retries, delayMs }, 'reconcile failed; retrying');
      outcome = 'error';
    }
    this.opts.metrics?.observeReconcile(this.name, outcome, (performance.now() - started) / 1000);
  }
}
