// Fencing the controllers' writes with the leader Lease. A lease alone does not stop a leader that was paused
// (a long GC, SIGSTOP, a VM migration) past its lease: it wakes up believing it leads, with writes in flight,
// while another replica already reconciles the same objects. So every write the controllers make carries a
// fence — the Lease as this replica last wrote it (holder and resourceVersion) — that the store checks in the
// write's own transaction: once anyone else has written the Lease, the old leader's writes are refused.
//
// The Lease's resourceVersion also moves on our own renewals. A write that read the fence just before a renewal
// landed is refused too; it is told apart from a lost lease by the elector's token, which moved within the same
// term (the renewal was ours), and is retried once the renewal is known. A refusal the elector cannot explain is a
// lost lease: the elector steps down (the controllers stop), and every later write of that term is refused at
// once, without asking the store.
import { ApiError } from '../lib/errors.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import type { DeleteOptions, ListQuery, ObjectClient, ObjectList, ObjectWatch, ObjectWatchEvent, ObjectWatchQuery, TxWrite, WriteFence, WriteOptions } from './client.js';

/** A write refused because the object it was fenced on moved on: for a controller, its replica lost the lease. */
export class FencedError extends ApiError {
  constructor(
    readonly fence: WriteFence,
    message: string,
  ) {
    super(409, 'Conflict', message, { name: fence.name, group: fence.kind.group, kind: fence.kind.plural });
    this.name = 'FencedError';
  }
}

export function isFenced(e: unknown): e is FencedError {
  return e instanceof FencedError;
}

export function fenceName(f: WriteFence): string {
  return `${f.kind.kind} ${f.namespace ? `${f.namespace}/` : ''}${f.name}`;
}

/** What a fenced client writes under: a leadership term and the lease as it stands in that term. */
export interface FencingToken {
  /** Counts this replica's leadership terms: a token of an older term is never valid again. */
  term: number;
  fence: WriteFence;
}

/** Who hands out fencing tokens (the LeaderElector). */
export interface FenceSource {
  /** The token of the current term, or undefined while not leading. */
  fencingToken(): FencingToken | undefined;
  /** Resolves once an acquire or renewal in flight has landed (and the token says so). */
  settled(): Promise<void>;
  /** The store refused a write of `term` that no renewal of ours explains: the lease is lost. */
  fenced(term: number, why: string): void;
}

/** How often a write refused because of our own renewals is tried again before the lease counts as lost. */
const MaxRenewalRetries = 3;

/**
 * The controllers' client for one leadership term: reads go straight through, every write carries the term's
 * fence. Made when the term starts (onStartedLeading); once the term is over, its writes are refused.
 */
export class FencedClient implements ObjectClient {
  private readonly term: number;
  /** The fence of the term's last token (for the message once the term is over). */
  private lastFence: WriteFence;

  constructor(
    private readonly inner: ObjectClient,
    private readonly source: FenceSource,
  ) {
    const token = source.fencingToken();
    if (!token) throw new Error('a fenced client is made while leading');
    this.term = token.term;
    this.lastFence = token.fence;
  }

  kind(group: string, kindOrPlural: string): KindDeclaration {
    return this.inner.kind(group, kindOrPlural);
  }

  get(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<StoredObject | undefined> {
    return this.inner.get(kind, namespace, name);
  }

  list(kind: KindDeclaration, query?: ListQuery): Promise<ObjectList> {
    return this.inner.list(kind, query);
  }

  watch(kind: KindDeclaration, query: ObjectWatchQuery, onEvent: (e: ObjectWatchEvent) => void): Promise<ObjectWatch> {
    return this.inner.watch(kind, query, onEvent);
  }

  create(kind: KindDeclaration, obj: KubeObject, opts: WriteOptions = {}): Promise<StoredObject> {
    return this.fenced((fence) => this.inner.create(kind, obj, { ...opts, fence }));
  }

  update(kind: KindDeclaration, obj: KubeObject, opts: WriteOptions = {}): Promise<StoredObject> {
    return this.fenced((fence) => this.inner.update(kind, obj, { ...opts, fence }));
  }

  updateStatus(kind: KindDeclaration, obj: KubeObject, opts: WriteOptions = {}): Promise<StoredObject> {
    return this.fenced((fence) => this.inner.updateStatus(kind, obj, { ...opts, fence }));
  }

  mergePatch(kind: KindDeclaration, namespace: string | undefined, name: string, patch: unknown, opts: WriteOptions = {}): Promise<StoredObject> {
    return this.fenced((fence) => this.inner.mergePatch(kind, namespace, name, patch, { ...opts, fence }));
  }

  delete(kind: KindDeclaration, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<StoredObject> {
    return this.fenced((fence) => this.inner.delete(kind, namespace, name, { ...opts, fence }));
  }

  transact(writes: TxWrite[], opts: WriteOptions = {}): Promise<Array<StoredObject | undefined>> {
    return this.fenced((fence) => this.inner.transact(writes, { ...opts, fence }));
  }

  private async fenced<T>(write: (fence: WriteFence) => Promise<T>): Promise<T> {
    for (let retry = 0; ; retry++) {
      const token = this.source.fencingToken();
      if (!token || token.term !== this.term) throw this.lost();
      this.lastFence = token.fence;
      try {
        return await write(token.fence);
      } catch (e) {
        if (!isFenced(e)) throw e;
        // Refused: the lease moved after we read the token. If it was our own renewal, the token moved too.
        await this.source.settled();
        const now = this.source.fencingToken();
        const renewedMeanwhile = now?.term === this.term && now.fence.resourceVersion !== token.fence.resourceVersion;
        if (renewedMeanwhile && retry < MaxRenewalRetries) continue;
        this.source.fenced(this.term, e.message);
        throw e;
      }
    }
  }

  private lost(): FencedError {
    return new FencedError(this.lastFence, `this replica no longer holds ${fenceName(this.lastFence)} (its term ${this.term} is over): its controllers stop writing`);
  }
}
