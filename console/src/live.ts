// Live lists: each list is listed once over the kube API, then kept current by one multiplexed stream per tab
// (/ui/stream: several watches over one response). After a drop the stream is opened again with every watch's
// last resourceVersion (bookmarks keep them fresh); a watch answered 410 Expired is listed again first.
import { useEffect, useMemo, useSyncExternalStore } from 'react';
import { kube, type KubeObject, type Resource } from './api';

type Status = 'loading' | 'live' | 'error';

interface Entry {
  key: string;
  resource: Resource;
  namespace?: string;
  items: Map<string, KubeObject>;
  rv?: string;
  status: Status;
  error?: string;
  refs: number;
  /** Bumped on every change: what React compares. */
  version: number;
  snapshot?: { version: number; value: LiveList };
  dropTimer?: ReturnType<typeof setTimeout>;
}

export interface LiveList {
  items: KubeObject[];
  status: Status;
  error?: string;
}

interface StreamMessage {
  id: string;
  event: { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: KubeObject & { code?: number; message?: string } };
}

const objKey = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

class LiveStore {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<() => void>();
  private abort?: AbortController;
  private reopenTimer?: ReturnType<typeof setTimeout>;
  private backoffMs = 500;
  /** How many times a stream was opened (the tests read it to see one stream per tab). */
  streamsOpened = 0;

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  private emit(e: Entry): void {
    e.version++;
    for (const l of this.listeners) l();
  }

  snapshot(key: string): LiveList {
    const e = this.entries.get(key);
    if (!e) return EMPTY;
    if (e.snapshot?.version !== e.version) {
      const items = [...e.items.values()].sort((a, b) => objKey(a).localeCompare(objKey(b)));
      e.snapshot = { version: e.version, value: { items, status: e.status, error: e.error } };
    }
    return e.snapshot.value;
  }

  acquire(resource: Resource, namespace?: string): string {
    const key = `${resource.group}/${resource.plural}/${namespace ?? '*'}`;
    let e = this.entries.get(key);
    if (!e) {
      e = { key, resource, namespace, items: new Map(), status: 'loading', refs: 0, version: 0 };
      this.entries.set(key, e);
      void this.relist(e);
    }
    if (e.dropTimer) clearTimeout(e.dropTimer);
    e.dropTimer = undefined;
    e.refs++;
    return key;
  }

  release(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    e.refs--;
    // Kept a moment: moving between pages that show the same list does not list it again.
    if (e.refs <= 0) {
      e.dropTimer = setTimeout(() => {
        if (e.refs > 0) return;
        this.entries.delete(key);
        this.scheduleReopen();
      }, 10_000);
    }
  }

  /**
   * Forgets every list and closes the stream (at sign-out, once the views are gone): nothing opens it again with
   * the cookie of a session that is ending.
   */
  reset(): void {
    this.abort?.abort();
    this.abort = undefined;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    for (const e of this.entries.values()) if (e.dropTimer) clearTimeout(e.dropTimer);
    this.entries.clear();
    this.backoffMs = 500;
  }

  private async relist(e: Entry): Promise<void> {
    try {
      const list = await kube.list(e.resource, e.namespace);
      if (this.entries.get(e.key) !== e) return;
      e.items = new Map(list.items.map((o) => [objKey(o), o]));
      e.rv = list.metadata.resourceVersion;
      e.status = 'live';
      e.error = undefined;
    } catch (err) {
      // A list forgotten meanwhile (reset, dropped) has nobody to tell and no stream to reopen.
      if (this.entries.get(e.key) !== e) return;
      e.status = 'error';
      e.error = err instanceof Error ? err.message : String(err);
    }
    this.emit(e);
    this.scheduleReopen();
  }

  private scheduleReopen(delayMs = 30): void {
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = setTimeout(() => void this.openStream(), delayMs);
  }

  private async openStream(): Promise<void> {
    this.abort?.abort();
    const watched = [...this.entries.values()].filter((e) => e.status === 'live' && e.rv !== undefined);
    if (watched.length === 0) return;
    const ids = new Map(watched.map((e, i) => [`w${i}`, e]));
    const watches = [...ids].map(([id, e]) => ({
      id,
      group: e.resource.group,
      version: e.resource.version,
      resource: e.resource.plural,
      ...(e.namespace ? { namespace: e.namespace } : {}),
      resourceVersion: e.rv,
    }));
    const abort = new AbortController();
    this.abort = abort;
    this.streamsOpened++;
    try {
      const res = await fetch(`/ui/stream?watches=${encodeURIComponent(JSON.stringify(watches))}`, { credentials: 'same-origin', signal: abort.signal, headers: { accept: 'text/event-stream' } });
      if (res.status === 401) window.dispatchEvent(new Event('metalplane:unauthorized'));
      if (!res.ok || !res.body) throw new Error(`stream: ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = chunk
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (chunk.startsWith('event: ready')) {
            this.backoffMs = 500;
            continue;
          }
          if (data) this.apply(ids, JSON.parse(data) as StreamMessage);
        }
      }
    } catch (err) {
      if (abort.signal.aborted) return;
      void err;
    }
    if (abort.signal.aborted || this.abort !== abort) return;
    // The stream ended (server restart, network): open it again from the last resourceVersions.
    this.backoffMs = Math.min(this.backoffMs * 2, 10_000);
    this.scheduleReopen(this.backoffMs);
  }

  private apply(ids: Map<string, Entry>, m: StreamMessage): void {
    const e = ids.get(m.id);
    if (!e || this.entries.get(e.key) !== e) return;
    const { type, object } = m.event;
    if (type === 'ERROR') {
      // 410 Expired (compacted) or another failure: list again, then the stream reopens with the new version.
      e.status = 'loading';
      this.emit(e);
      void this.relist(e);
      return;
    }
    e.rv = object.metadata.resourceVersion;
    if (type === 'BOOKMARK') return;
    if (type === 'DELETED') e.items.delete(objKey(object));
    else e.items.set(objKey(object), object);
    this.emit(e);
  }
}

const EMPTY: LiveList = { items: [], status: 'loading' };
const DISABLED: LiveList = { items: [], status: 'live' };

export const live = new LiveStore();
(window as unknown as { __metalplaneLive?: LiveStore }).__metalplaneLive = live;

/**
 * Live objects of a resource. `namespaces`: for namespaced kinds, the projects to show (one watch each), or
 * 'all' (the operator: one watch over every namespace). `enabled: false` watches nothing.
 */
export function useLive(resource: Resource, namespaces: string[] | 'all' = 'all', enabled = true): LiveList {
  const nsKey = namespaces === 'all' ? '*' : namespaces.join(',');
  const keys = useMemo(() => {
    if (!enabled) return [] as string[];
    if (!resource.namespaced || namespaces === 'all') return [`${resource.group}/${resource.plural}/*`];
    return namespaces.map((n) => `${resource.group}/${resource.plural}/${n}`);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [resource.group, resource.plural, nsKey, enabled]);
  useEffect(() => {
    if (!enabled) return;
    const acquired = !resource.namespaced || namespaces === 'all' ? [live.acquire(resource)] : namespaces.map((n) => live.acquire(resource, n));
    return () => acquired.forEach((k) => live.release(k));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [keys]);
  const combined = useSyncExternalStore(live.subscribe, () => combinedSnapshot(keys));
  return combined;
}

const combinedCache = new Map<string, { parts: LiveList[]; value: LiveList }>();

function combinedSnapshot(keys: string[]): LiveList {
  if (keys.length === 0) return DISABLED;
  if (keys.length === 1) return live.snapshot(keys[0]!);
  const id = keys.join('|');
  const parts = keys.map((k) => live.snapshot(k));
  const prev = combinedCache.get(id);
  if (prev && prev.parts.every((p, i) => p === parts[i])) return prev.value;
  const status: Status = parts.some((p) => p.status === 'error') ? 'error' : parts.some((p) => p.status === 'loading') ? 'loading' : 'live';
  const value: LiveList = { items: parts.flatMap((p) => p.items), status, error: parts.find((p) => p.error)?.error };
  combinedCache.set(id, { parts, value });
  return value;
}
