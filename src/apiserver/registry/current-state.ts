// The current version of every object, in memory, followed by one store watch, so that point reads (GET, the
// read before an update, patch or delete, the namespace check of a create) do not go to the store. The store
// hands events to watchers before it acknowledges a write, so an acknowledged write is always visible here.
// Reads at an older revision (continue tokens, Exact) and lists still go to the store.
import type { KeyValue, Store, WatchHandle } from '../../store/types.js';
import { STORE_KEY_PREFIX } from '../../kinds/index.js';

export class CurrentState {
  private current: Map<string, KeyValue> | undefined;
  private watch: WatchHandle | undefined;

  constructor(private readonly store: Store) {}

  async start(): Promise<void> {
    if (this.watch) return;
    const page = await this.store.list(STORE_KEY_PREFIX);
    const current = new Map<string, KeyValue>();
    for (const kv of page.items) current.set(kv.key, kv);
    this.watch = await this.store.watch(STORE_KEY_PREFIX, {
      fromRevision: page.revision,
      onEvents: (events) => {
        for (const ev of events) {
          if (ev.type === 'delete') current.delete(ev.kv.key);
          else current.set(ev.kv.key, ev.kv);
        }
      },
      // Back to reading the store: never answer from a cache that stopped following.
      onError: () => (this.current = undefined),
    });
    // The store delivers a new watch's events from its next turn on; serve from the map only once it is live.
    await new Promise((resolve) => setImmediate(resolve));
    this.current = current;
  }

  /** The current version of a key: from memory once started, else from the store. */
  async get(key: string): Promise<KeyValue | undefined> {
    return this.current ? this.current.get(key) : this.store.get(key);
  }

  close(): void {
    this.watch?.cancel();
    this.watch = undefined;
    this.current = undefined;
  }
}
