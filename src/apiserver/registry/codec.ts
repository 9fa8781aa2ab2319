// How objects are stored and read back: one JSON text per version, without resourceVersion (the store's
// revision is that). Decoding is done once per stored version and shared, deep-frozen, by watchers,
// informers and the HTTP surface; serving a stored version as JSON splices the revision into its text.
import type { KeyValue } from '../../store/types.js';
import type { KubeObject, StoredObject } from '../../kinds/types.js';
import { deepFreeze } from '../../runtime/cache.js';

export class ObjectCodec {
  private readonly decoded = new WeakMap<KeyValue, StoredObject>();
  private readonly rawCache = new WeakMap<KeyValue, string>();

  /** A stored version, decoded once and deep-frozen (which both enforces sharing and lets caches keep it). */
  decode(kv: KeyValue): StoredObject {
    let o = this.decoded.get(kv);
    if (!o) {
      o = JSON.parse(kv.value) as StoredObject;
      o.metadata.resourceVersion = String(kv.modRevision);
      deepFreeze(o);
      this.decoded.set(kv, o);
    }
    return o;
  }

  /** A fresh object of one stored version, for a caller to own and change (one parse, no cache, no clone). */
  own(kv: KeyValue): StoredObject {
    const o = JSON.parse(kv.value) as StoredObject;
    o.metadata.resourceVersion = String(kv.modRevision);
    return o;
  }

  /**
   * Stored JSON always starts `{"apiVersion":…,"kind":…,"metadata":{`, so `rawJson` can splice the
   * resourceVersion in without parsing (apiVersion and kind are strings, which cannot hold that sequence).
   */
  encode(obj: KubeObject): string {
    const { apiVersion, kind, metadata, ...rest } = obj;
    const { resourceVersion: _rv, ...meta } = metadata;
    return JSON.stringify({ apiVersion, kind, metadata: meta, ...rest });
  }

  /** The object of one stored version as JSON text, with its resourceVersion, without a parse/stringify round trip. */
  rawJson(kv: KeyValue): string {
    let s = this.rawCache.get(kv);
    if (s === undefined) {
      const at = kv.value.indexOf('"metadata":{');
      if (at < 0) s = JSON.stringify(this.decode(kv));
      else {
        const open = at + '"metadata":{'.length;
        const sep = kv.value[open] === '}' ? '' : ',';
        s = `${kv.value.slice(0, open)}"resourceVersion":"${kv.modRevision}"${sep}${kv.value.slice(open)}`;
      }
      this.rawCache.set(kv, s);
    }
    return s;
  }
}
