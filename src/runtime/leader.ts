// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection: every replica
// tries to acquire or renew the same Lease with optimistic concurrency (the write names the
// resourceVersion it read, so of two racing replicas one gets 409 Conflict). A lease held by someone else
// counts as expired only after leaseDurationSeconds have passed on *our* clock since we last saw it change
// (renewTime is never compared across machines, so clock skew between replicas does not matter).
// A leader that cannot renew for renewDeadline steps down, before the lease can expire for the others.
// A lease alone cannot stop a leader that was paused past it and wakes with writes in flight: the elector also
// hands out fencing tokens (the lease as it last wrote it), and the controllers' client (`fencedClient()`,
// runtime/fencing.ts) makes every write conditional on them in the store.
import { systemClock, type Clock, type Timer } from '../lib/clock.js';
import { isApiError } from '../lib/errors.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import type { ObjectClient, WriteFence } from './client.js';
import { FencedClient, type FenceSource, type FencingToken } from './fencing.js';
import { childLogger, silentLogger, type Logger } from './logger.js';

export const LeaseNamespace = 'metalplane-system';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface LeaderElectorOptions {
  client: ObjectClient;
  /** Unique per replica, e.g. `hostname_pid_random`. */
  identity: string;
  /** Lease name (default `metalplane-controllers`). */
  leaseName?: string;
  /** Lease namespace (default `metalplane-system`). */
  namespace?: string;
  /** How long a lease stays valid without renewal (default 15). */
  leaseDurationSeconds?: number;
  /** How often the leader renews (default 2 s). */
  renewIntervalMs?: number;
  /** How often a follower tries to acquire (default 2 s). */
  retryIntervalMs?: number;
  /** A leader that could not renew for this long steps down (default 10 s; keep it < leaseDuration). */
  renewDeadlineMs?: number;
  clock?: Clock;
  logger?: Logger;
  onStartedLeading?: () => void;
  /** Awaited before the lease is released, so the next leader starts only after we stopped. */
  onStoppedLeading?: () => void | Promise<void>;
  onNewLeader?: (identity: string) => void;
  /**
   * No other replica can share the store (the embedded SQLite store has one writer): a lease held by anyone
   * else is a previous process of this one, gone — after a kill -9 it is taken at once instead of after
   * leaseDurationSeconds.
   */
  soleCandidate?: boolean;
}

/** A Lease MicroTime: RFC 3339 with microseconds, `2026-01-01T00:00:00.000000Z`. */
export function formatMicroTime(t: number | Date): string {
  return new Date(t).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

type Attempt = 'acquired' | 'renewed' | 'held' | 'failed';

export class LeaderElector implements FenceSource {
  private readonly client: ObjectClient;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly identity: string;
  private readonly name: string;
  private readonly namespace: string;
  private readonly durationS: number;
  private readonly soleCandidate: boolean;
  private readonly renewMs: number;
  private readonly retryMs: number;
  private readonly deadlineMs: number;
  private readonly opts: LeaderElectorOptions;
  private kind?: KindDeclaration;

  private leading = false;
  private running = false;
  private timer?: Timer;
  private inFlight?: Promise<void>;
  /** The acquire or renewal in flight (not the whole tick, which may wait for onStoppedLeading). */
  private attempting?: Promise<Attempt>;
  private lastRenew = 0;
  /** Leadership terms of this replica: each acquisition starts a new one, whose tokens die with it. */
  private term = 0;
  /** The lease as we last wrote it: what our fenced writes require the store to still hold. */
  private written?: WriteFence;
  /** The last holder/renewTime we saw and when (our clock) we saw it change. */
  private observedHolder = '';
  private observedRenewTime = '';
  private observedAt = 0;

  constructor(opts: LeaderElectorOptions) {
    this.opts = opts;
    this.client = opts.client;
    this.clock = opts.clock ?? systemClock;
    this.identity = opts.identity;
    this.name = opts.leaseName ?? 'metalplane-controllers';
    this.namespace = opts.namespace ?? LeaseNamespace;
    this.durationS = opts.leaseDurationSeconds ?? 15;
    this.soleCandidate = opts.soleCandidate ?? false;
    this.renewMs = opts.renewIntervalMs ?? 2_000;
    this.retryMs = opts.retryIntervalMs ?? 2_000;
    this.deadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.log = childLogger(opts.logger ?? silentLogger, { lease: `${this.namespace}/${this.name}`, identity: this.identity });
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The fencing token of the current term; undefined while not leading. */
  fencingToken(): FencingToken | undefined {
    return this.leading && this.written ? { term: this.term, fence: this.written } : undefined;
  }

  async settled(): Promise<void> {
    await this.attempting;
  }

  /** A fenced write of `term` was refused and no renewal of ours explains it: someone else wrote the lease. */
  fenced(term: number, why: string): void {
    if (!this.leading || term !== this.term) return;
    void this.stepDown(`a write was fenced off: ${why}`);
  }

  /**
   * The controllers' client for the term that just started (call it in onStartedLeading): its writes apply only
   * while the lease is as this replica last wrote it.
   */
  fencedClient(inner: ObjectClient = this.client): ObjectClient {
    return new FencedClient(inner, this);
  }

  /** The holder we last observed (ourselves when leading). */
  leader(): string {
    return this.observedHolder;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops trying; if leading, calls onStoppedLeading and then releases the lease for a fast handover. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    if (this.leading) await this.stepDown('stopped');
    // Also when not (yet) leading: an acquire may have landed just as we stopped.
    await this.release();
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.tick().finally(() => (this.inFlight = undefined));
    }, ms);
  }

  private async tick(): Promise<void> {
    const attempt = await (this.attempting = this.tryAcquireOrRenew());
    if (!this.running) return;
    const now = this.clock.now();
    if (attempt === 'acquired' || attempt === 'renewed') {
      this.lastRenew = now;
      if (!this.leading) {
        this.term++;
        this.leading = true;
        this.log.info({}, 'became leader');
        try {
          this.opts.onStartedLeading?.();
        } catch (err) {
          this.log.error({ err }, 'onStartedLeading threw');
        }
      }
    } else if (this.leading && (attempt === 'held' || now - this.lastRenew >= this.deadlineMs)) {
      await this.stepDown(attempt === 'held' ? 'lease taken by another holder' : 'could not renew within the deadline');
    }
    this.schedule(this.leading ? this.renewMs : this.retryMs);
  }

  private async stepDown(why: string): Promise<void> {
    this.leading = false;
    this.log.warn({ why }, 'stopped leading');
    try {
      await this.opts.onStoppedLeading?.();
    } catch (err) {
      this.log.error({ err }, 'onStoppedLeading threw');
    }
  }

  private leaseKind(): KindDeclaration {
    return (this.kind ??= this.client.kind('coordination.k8s.io', 'Lease'));
  }

  private observe(spec: LeaseSpec): void {
    const holder = spec.holderIdentity ?? '';
    const renew = spec.renewTime ?? '';
    if (holder !== this.observedHolder || renew !== this.observedRenewTime) {
      if (holder !== this.observedHolder && holder) this.opts.onNewLeader?.(holder);
      this.observedHolder = holder;
      this.observedRenewTime = renew;
      this.observedAt = this.clock.now();
    }
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    const now = this.clock.now();
    const nowTime = formatMicroTime(now);
    let lease: StoredObject | undefined;
    try {
      const kind = this.leaseKind();
      lease = await this.client.get(kind, this.namespace, this.name);
      if (!lease) {
        const spec: LeaseSpec = {
          holderIdentity: this.identity,
          leaseDurationSeconds: this.durationS,
          acquireTime: nowTime,
          renewTime: nowTime,
          leaseTransitions: 0,
        };
        const obj: KubeObject = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.name, namespace: this.namespace },
          spec,
        };
        let created: StoredObject;
        try {
          created = await this.client.create(kind, obj);
        } catch (err) {
          // A fresh install may not have the lease's namespace yet: make it, then try again.
          if (!(isApiError(err) && err.code === 404)) throw err;
          await this.ensureNamespace();
          created = await this.client.create(kind, obj);
        }
        this.noteWritten(kind, created);
        this.observe(spec);
        return 'acquired';
      }
      const old = (lease.spec ?? {}) as LeaseSpec;
      this.observe(old);
      const holder = old.holderIdentity ?? '';
      const durationMs = (old.leaseDurationSeconds ?? this.durationS) * 1000;
      if (holder && holder !== this.identity && !this.soleCandidate && this.observedAt + durationMs > now) return 'held';
      const mine = holder === this.identity && this.leading;
      const spec: LeaseSpec = {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.durationS,
        acquireTime: mine ? (old.acquireTime ?? nowTime) : nowTime,
        renewTime: nowTime,
        leaseTransitions: holder === this.identity ? (old.leaseTransitions ?? 0) : (old.leaseTransitions ?? 0) + 1,
      };
      this.noteWritten(kind, await this.client.update(kind, { ...lease, spec }));
      this.observe(spec);
      return mine ? 'renewed' : 'acquired';
    } catch (err) {
      const conflict = isApiError(err) && err.code === 409;
      this.log[conflict ? 'debug' : 'warn']({ err }, conflict ? 'lost a lease race' : 'could not acquire or renew the lease');
      return 'failed';
    }
  }

  private noteWritten(kind: KindDeclaration, lease: StoredObject): void {
    this.written = { kind, namespace: this.namespace, name: this.name, resourceVersion: lease.metadata.resourceVersion };
  }

  private async ensureNamespace(): Promise<void> {
    try {
      await this.client.create(this.client.kind('', 'Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: this.namespace } });
    } catch (err) {
      if (!(isApiError(err) && err.code === 409)) throw err;
    }
  }

  private async release(): Promise<void> {
    try {
      const kind = this.leaseKind();
      const lease = await this.client.get(kind, this.namespace, this.name);
      const old = (lease?.spec ?? {}) as LeaseSpec;
      if (!lease || old.holderIdentity !== this.identity) return;
      const now = formatMicroTime(this.clock.now());
      // As client-go: an empty holder with a 1 s duration lets the next replica take over at once.
      const spec: LeaseSpec = {
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: old.leaseTransitions ?? 0,
      };
      this.written = undefined;
      await this.client.update(kind, { ...lease, spec });
      this.observe(spec);
    } catch (err) {
      this.log.warn({ err }, 'could not release the lease; it will expire');
    }
  }
}
