// Watches with Kubernetes semantics over the store's watch: synthetic ADDED events for "get state and start
// at most recent", selector transitions as ADDED/DELETED, bookmarks (periodic and initial-events-end), and a
// 410 Expired as one ERROR event when the revision was compacted away.
import type { KeyValue, Store, StoreEvent } from '../../store/types.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../../kinds/types.js';
import { apiVersionOf } from '../../kinds/types.js';
import type { ObjectWatch, ObjectWatchEvent, ObjectWatchQuery } from '../../runtime/client.js';
import { prefixFor } from '../../kinds/index.js';
import { ApiError } from '../../lib/errors.js';
import { statusFromError, toApiError } from '../status.js';
import type { ObjectCodec } from './codec.js';
import { servesPrefix, type CurrentState } from './current-state.js';
import { kvMatcherFor } from './list.js';
import { namespaceOf, parseResourceVersion } from './meta.js';

interface BookmarkWatch {
  send: (rv: number) => void;
}

export type WatchQuery = ObjectWatchQuery & { sendInitialEvents?: boolean };

export class Watches {
  private readonly bookmarkWatches = new Set<BookmarkWatch>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly codec: ObjectCodec,
    /** How often watches that asked for bookmarks get one (ms). */
    bookmarkIntervalMs: number,
    /** The in-memory current state, for the initial state of a watch without a resourceVersion. */
    private readonly current?: CurrentState,
  ) {
    this.timer = setInterval(() => void this.sendBookmarks(), bookmarkIntervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async watch(kind: KindDeclaration, query: WatchQuery, onEvent: (e: ObjectWatchEvent) => void): Promise<ObjectWatch> {
    const codec = this.codec;
    const matches = kvMatcherFor(kind, query, codec);
    const prefix = prefixFor(kind, namespaceOf(kind, query.namespace));
    let from: number;
    let stopped = false;
    const initial: StoredObject[] = [];
    // A metadata-only watcher gets the codec's shared projections (selectors still see whole objects); one that
    // keeps what it is given (an informer, `shared`) has the codec remember it for other readers.
    const held = query.shared === true;
    const view = query.metadataOnly ? (kv: KeyValue) => codec.metadata(kv) : (kv: KeyValue) => codec.decode(kv, held);
    const rvParam = query.resourceVersion ?? '';
    if (rvParam === '' || rvParam === '0' || query.sendInitialEvents) {
      // "Get state and start at most recent": synthetic ADDED events for what exists, then follow.
      const page = await this.initialState(prefix);
      from = page.revision;
      for (const kv of page.items) if (!matches || matches(kv)) initial.push(view(kv));
    } else {
      from = parseResourceVersion(rvParam);
    }
    const emit = (e: ObjectWatchEvent): void => {
      if (!stopped) onEvent(e);
    };
    let lastRv = from;
    const onEvents = (events: StoreEvent[]): void => {
      for (const ev of events) {
        lastRv = ev.kv.modRevision;
        const obj = view(ev.kv);
        if (ev.type === 'delete') {
          // The tombstone carries the last value; kube reports it with the deletion's revision.
          if (!matches || matches(ev.kv)) emit({ type: 'DELETED', object: obj });
          continue;
        }
        const now = !matches || matches(ev.kv);
        const before = ev.prevKv !== undefined && (!matches || matches(ev.prevKv));
        if (ev.type === 'create') {
          if (now) emit({ type: 'ADDED', object: obj });
        } else if (now && before) emit({ type: 'MODIFIED', object: obj });
        else if (now && !before) emit({ type: 'ADDED', object: obj });
        else if (!now && before) emit({ type: 'DELETED', object: obj });
      }
    };
    let handle: { cancel(): void };
    try {
      handle = await this.store.watch(prefix, {
        fromRevision: from,
        onEvents,
        onError: (err) => {
          emit({ type: 'ERROR', object: statusFromError(toApiError(err)) as unknown as KubeObject });
          stop();
        },
      });
    } catch (err) {
      const e = toApiError(err);
      if (e.code === 410) {
        const gone = new ApiError(410, 'Expired', `too old resource version: ${from} (${await this.store.compactedRevision()})`);
        onEvent({ type: 'ERROR', object: statusFromError(gone) as unknown as KubeObject });
        return { stop: () => undefined };
      }
      throw e;
    }
    for (const o of initial) emit({ type: 'ADDED', object: o });
    const bookmark: BookmarkWatch = {
      send: (rv) => {
        if (rv > lastRv) lastRv = rv;
        emit({ type: 'BOOKMARK', object: { apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: { resourceVersion: String(lastRv) } } });
      },
    };
    if (query.sendInitialEvents) {
      emit({
        type: 'BOOKMARK',
        object: { apiVersion: apiVersionOf(kind), kind: kind.kind, metadata: { resourceVersion: String(from), annotations: { 'k8s.io/initial-events-end': 'true' } } },
      });
    }
    if (query.allowWatchBookmarks) this.bookmarkWatches.add(bookmark);
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      this.bookmarkWatches.delete(bookmark);
      handle?.cancel();
    };
    return { stop };
  }

  /** What exists under a prefix now and the revision it is at: from memory when it serves, else the store. */
  private async initialState(prefix: string): Promise<{ revision: number; items: KeyValue[] }> {
    const fromMemory =
      this.current && servesPrefix(prefix)
        ? await this.current.read((view) => {
            const { keys, start, end } = view.range(prefix);
            const items: KeyValue[] = [];
            for (let i = start; i < end; i++) items.push(view.get(keys[i]!)!);
            return { revision: view.revision, items };
          })
        : undefined;
    return fromMemory ?? this.store.list(prefix);
  }

  private async sendBookmarks(): Promise<void> {
    if (this.bookmarkWatches.size === 0) return;
    const rv = await this.store.currentRevision();
    for (const w of this.bookmarkWatches) w.send(rv);
  }
}
