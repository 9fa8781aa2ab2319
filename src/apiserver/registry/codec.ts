// How objects are stored and read back: one JSON text per version, without resourceVersion (the store's
// revision is that). A decoded version is deep-frozen and may be shared by watchers, informers and the HTTP
// surface; serving a stored version as JSON splices the revision into its text.
//
// Memory: the in-memory current state holds every object's text, which is the compact form. Decoded objects are
// kept only by whoever needs them whole: the versions whole-object informers hold are remembered here while
// current (so a list, Table or watch of those kinds reuses them), plus the last few decoded, so the watchers of
// one event share one decode; what is decoded only to be served or projected (a metadata-only informer's list)
// dies young. A cache of every decoded version would double the heap at 100 000 objects; a weak one would too,
// as weak targets survive minor collections and get promoted.
import type { KeyValue } from '../../store/types.js';
import type { KubeObject, StoredObject } from '../../kinds/types.js';
import { deepFreeze } from '../../runtime/cache.js';
import { metadataOf } from '../../runtime/client.js';

/** Enough for every watcher of a burst of events to share decodes (and for hot GETs); small next to what a minor collection frees. */
const RECENT_DECODES = 256;

export class ObjectCodec {
  /** The versions decoded last (insertion order = age). */
  private readonly recent = new Map<KeyValue, StoredObject>();
  /** The texts of the versions GETs served last. */
  private readonly recentRaw = new Map<KeyValue, string>();

  /** Versions a whole-object cache keeps (see `decode`'s `held`); each entry lives while its version is current. */
  private readonly held = new WeakMap<KeyValue, StoredObject>();

  /**
   * A stored version, decoded and deep-frozen (which both enforces sharing and lets caches keep it). `held`: the
   * caller keeps it for as long as the version is current (an informer), so every later reader gets the same
   * object instead of a parse.
   */
  decode(kv: KeyValue, held = false): StoredObject {
    let o = this.decoded(kv);
    if (!o) {
      o = JSON.parse(kv.value) as StoredObject;
      o.metadata.resourceVersion = String(kv.modRevision);
      deepFreeze(o);
      this.recent.set(kv, o);
      if (this.recent.size > RECENT_DECODES) this.recent.delete(this.recent.keys().next().value!);
    }
    if (held) this.held.set(kv, o);
    return o;
  }

  /** The shared decode of a version if one is at hand (an informer holds it, or it was decoded lately), else undefined. */
  decoded(kv: KeyValue): StoredObject | undefined {
    return this.held.get(kv) ?? this.recent.get(kv);
  }

  /** Projections by version, shared by every metadata-only cache; each lives while its version is current. */
  private readonly projections = new WeakMap<KeyValue, StoredObject>();

  /**
   * `metadataOf` a stored version, one per version: from a decode at hand, else from the object being written
   * as that version (see `writing`), else decoded only to be projected.
   */
  metadata(kv: KeyValue): StoredObject {
    let p = this.projections.get(kv);
    if (!p) {
      const decoded = this.decoded(kv);
      const w = decoded ? undefined : this.inWrite.get(kv.key);
      p =
        decoded ? metadataOf(decoded)
        : w && w.value === kv.value ? metadataOf(w.obj, { resourceVersion: String(kv.modRevision) })
        : metadataOf(this.own(kv));
      this.projections.set(kv, p);
    }
    return p;
  }

  /** Writes in progress, by store key: the text and the object it encodes. */
  private readonly inWrite = new Map<string, { value: string; obj: KubeObject }>();

  /**
   * Runs `write`, the store write of `obj` encoded as `value` under `key`. The store broadcasts a write's event
   * before the write resolves, so while it runs the metadata-only caches that follow every write project that
   * version from `obj` instead of parsing `value` back (a create's one parse, and a copy of all its strings).
   */
  async writing<T>(key: string, value: string, obj: KubeObject, write: () => Promise<T>): Promise<T> {
    const w = { value, obj };
    this.inWrite.set(key, w);
    try {
      return await write();
    } finally {
      if (this.inWrite.get(key) === w) this.inWrite.delete(key);
    }
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
  rawJson(kv: KeyValue, remember = false): string {
    // Lists do not cache: a splice costs little next to writing it out, and a cache would double every listed
    // object's text. A GET remembers its few last texts (flattened once written), for objects read again and again.
    if (remember) {
      let s = this.recentRaw.get(kv);
      if (s === undefined) {
        s = this.rawJson(kv);
        this.recentRaw.set(kv, s);
        if (this.recentRaw.size > RECENT_DECODES) this.recentRaw.delete(this.recentRaw.keys().next().value!);
      }
      return s;
    }
    const at = revisionAt(kv.value);
    if (at < 0) return JSON.stringify(this.decode(kv));
    return `${kv.value.slice(0, at)}${revisionMember(kv, at)}${kv.value.slice(at)}`;
  }

  /**
   * rawJson(kv)'s UTF-8 bytes, written into `buf` at `offset` (which must have room for `rawJsonBytes(kv)`);
   * returns the number written. The stored text is written around the revision in place: no spliced string.
   */
  writeRawJson(kv: KeyValue, buf: Buffer, offset: number): number {
    const at = revisionAt(kv.value);
    if (at < 0) return buf.write(this.rawJson(kv), offset, 'utf8');
    let n = buf.write(kv.value.slice(0, at), offset, 'utf8');
    n += buf.write(revisionMember(kv, at), offset + n, 'latin1');
    return n + buf.write(kv.value.slice(at), offset + n, 'utf8');
  }

  /** How many bytes writeRawJson writes for `kv`. */
  rawJsonBytes(kv: KeyValue): number {
    const at = revisionAt(kv.value);
    return at < 0 ? Buffer.byteLength(this.rawJson(kv)) : Buffer.byteLength(kv.value) + revisionMember(kv, at).length;
  }
}

const METADATA_OPEN = '"metadata":{';

/** Where rawJson puts the resourceVersion: just inside the metadata object (-1: the text has none to find). */
function revisionAt(value: string): number {
  const at = value.indexOf(METADATA_OPEN);
  return at < 0 ? -1 : at + METADATA_OPEN.length;
}

/** The resourceVersion member rawJson inserts at `at`, with the comma the members after it need. */
function revisionMember(kv: KeyValue, at: number): string {
  return `"resourceVersion":"${kv.modRevision}"${kv.value[at] === '}' ? '' : ','}`;
}
