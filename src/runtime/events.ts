// Records core v1 Events (what `kubectl describe` and `kubectl get events` show) through the ObjectClient.
// Like client-go's recorder + correlator: a repeat of the same event (same object, type, reason and
// message) bumps `count` and `lastTimestamp` of the existing Event instead of creating a new one, and a
// per-object token bucket keeps a hot-looping controller from flooding the store. Recording never throws
// into the caller: an event is worth a log line, never a failed reconcile.
import { systemClock, type Clock } from '../lib/clock.js';
import { isApiError } from '../lib/errors.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import type { ObjectClient } from './client.js';
import { formatTime } from './conditions.js';
import { silentLogger, type Logger } from './logger.js';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  client: ObjectClient;
  /** source.component and reportingComponent, e.g. `metalplane-controller-manager`. */
  component: string;
  /** reportingInstance (e.g. the replica's identity); omitted when absent. */
  instance?: string;
  clock?: Clock;
  logger?: Logger;
  /** Distinct events remembered for aggregation (default 4096, least recently used dropped). */
  cacheSize?: number;
  /** Token bucket per object: burst (default 25) and one token back every refillMs (default 5 min). */
  burst?: number;
  refillMs?: number;
}

/** Where events of cluster-scoped objects go, as in Kubernetes. */
export const ClusterScopedEventNamespace = 'default';

const MaxMessageLength = 1024;

interface Seen {
  namespace: string;
  name: string;
  count: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class EventRecorder {
  private readonly client: ObjectClient;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly opts: EventRecorderOptions;
  private eventKind?: KindDeclaration;
  private readonly seen = new Map<string, Seen>();
  private readonly buckets = new Map<string, Bucket>();
  /** One promise chain per aggregation key, so repeats of one event are written in order. */
  private readonly chains = new Map<string, Promise<void>>();
  private seq = 0;

  constructor(opts: EventRecorderOptions) {
    this.opts = opts;
    this.client = opts.client;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
  }

  /**
   * Records an event about `regarding`. Returns a promise that settles once the event is written (or
   * given up on); it never rejects, so callers may await it or not.
   */
  record(regarding: StoredObject, type: EventType, reason: string, message: string): Promise<void> {
    const msg = message.length > MaxMessageLength ? message.slice(0, MaxMessageLength - 3) + '...' : message;
    const key = JSON.stringify([regarding.metadata.uid, regarding.kind, regarding.metadata.namespace ?? '', regarding.metadata.name, type, reason, msg]);
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev
      .then(() => this.write(key, regarding, type, reason, msg))
      .catch((err: unknown) => {
        this.log.warn({ err, reason, object: regarding.metadata.name }, 'could not record event');
      });
    this.chains.set(key, next);
    void next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }

  /** Waits for every event recorded so far to be written. */
  async flush(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  private async write(key: string, obj: StoredObject, type: EventType, reason: string, message: string): Promise<void> {
    if (!this.take(obj.metadata.uid)) {
      this.log.debug({ reason, object: obj.metadata.name }, 'event dropped by rate limit');
      return;
    }
    const kind = (this.eventKind ??= this.client.kind('', 'Event'));
    const now = formatTime(this.clock.now());
    const seen = this.seen.get(key);
    if (seen) {
      try {
        await this.client.mergePatch(kind, seen.namespace, seen.name, { count: seen.count + 1, lastTimestamp: now });
        seen.count++;
        this.remember(key, seen);
        return;
      } catch (err) {
        // Gone (deleted, expired): start a new series below.
        if (!(isApiError(err) && err.code === 404)) throw err;
        this.seen.delete(key);
      }
    }
    const namespace = obj.metadata.namespace || ClusterScopedEventNamespace;
    const event: KubeObject = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: this.eventName(obj.metadata.name), namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: this.opts.component },
      reportingComponent: this.opts.component,
      ...(this.opts.instance ? { reportingInstance: this.opts.instance } : {}),
    };
    let created: StoredObject;
    try {
      created = await this.client.create(kind, event);
    } catch (err) {
      // Another replica picked the same name in the same nanosecond: take another.
      if (!(isApiError(err) && err.code === 409)) throw err;
      event.metadata.name = this.eventName(obj.metadata.name);
      created = await this.client.create(kind, event);
    }
    this.remember(key, { namespace, name: created.metadata.name, count: 1 });
  }

  /** `<object>.<hex>` like client-go (which uses the time in nanoseconds); a counter keeps names unique. */
  private eventName(objName: string): string {
    const ns = BigInt(Math.floor(this.clock.now())) * 1_000_000n + BigInt(this.seq++ % 1_000_000);
    return `${objName}.${ns.toString(16)}`;
  }

  private remember(key: string, s: Seen): void {
    this.seen.delete(key);
    this.seen.set(key, s);
    const max = this.opts.cacheSize ?? 4096;
    while (this.seen.size > max) this.seen.delete(this.seen.keys().next().value!);
  }

  private take(uid: string): boolean {
    const burst = this.opts.burst ?? 25;
    const refill = this.opts.refillMs ?? 5 * 60_000;
    const now = this.clock.now();
    const b = this.buckets.get(uid) ?? { tokens: burst, at: now };
    const gained = Math.floor((now - b.at) / refill);
    if (gained > 0) {
      b.tokens = Math.min(burst, b.tokens + gained);
      b.at += gained * refill;
    }
    if (b.tokens >= burst) b.at = now;
    if (b.tokens <= 0) {
      this.buckets.set(uid, b);
      return false;
    }
    b.tokens--;
    this.buckets.delete(uid);
    this.buckets.set(uid, b);
    const max = this.opts.cacheSize ?? 4096;
    while (this.buckets.size > max) this.buckets.delete(this.buckets.keys().next().value!);
    return true;
  }
}
