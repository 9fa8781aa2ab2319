// Lists with Kubernetes semantics: resourceVersion ''/'0'/N (+ resourceVersionMatch), limit/continue with pages
// consistent at the first page's revision, label and field selectors. A list of the current state (no
// resourceVersion, 0, N NotOlderThan, or a continue token whose revision is still the current one) is read from
// the in-memory current state; one at an older revision (Exact, a continue token after writes) from the store.
import type { KeyValue, Store } from '../../store/types.js';
import type { KindDeclaration, StoredObject } from '../../kinds/types.js';
import type { ListQuery, ObjectList } from '../../runtime/client.js';
import { prefixFor } from '../../kinds/index.js';
import { ApiError } from '../../lib/errors.js';
import { parseFieldSelector, parseLabelSelector } from '../selectors.js';
import { decodeContinue, encodeContinue } from '../continue-token.js';
import type { ObjectCodec } from './codec.js';
import { servesPrefix, type CurrentState, type CurrentView } from './current-state.js';
import { namespaceOf, parseResourceVersion } from './meta.js';

export type Matcher = (obj: StoredObject) => boolean;

export type ListVersionsQuery = ListQuery & { resourceVersionMatch?: string };
export type ListedVersions = Omit<ObjectList, 'items'> & { kvs: KeyValue[] };

/** A predicate over stored versions (see kvMatcherFor). */
export type KvMatcher = (kv: KeyValue) => boolean;

/**
 * The selectors of a query as a predicate over stored versions. Labels, names and namespaces are read from the
 * codec's metadata projection of a version, which the metadata-only informers already hold for every object, so
 * a selector over a large collection does not parse every object in it; other fields decode the object.
 */
export function kvMatcherFor(kind: KindDeclaration, query: ListQuery | undefined, codec: ObjectCodec): KvMatcher | undefined {
  const s = selectorsOf(kind, query);
  if (!s) return undefined;
  const { matches } = s;
  return s.metadataOnly ? (kv) => matches(codec.metadata(kv)) : (kv) => matches(codec.decode(kv));
}

/** The label and field selectors of a query as one predicate, and whether it reads only metadata; undefined when there are none. */
function selectorsOf(kind: KindDeclaration, query: ListQuery | undefined): { matches: Matcher; metadataOnly: boolean } | undefined {
  const label = query?.labelSelector ? parseLabelSelector(query.labelSelector) : undefined;
  const field = query?.fieldSelector ? parseFieldSelector(query.fieldSelector, kind) : undefined;
  if (!label && !field) return undefined;
  return {
    matches: (o) => (!label || label.matches(o.metadata.labels ?? {})) && (!field || field.matches(o)),
    metadataOnly: !field || field.requirements.every((r) => r.field === 'metadata.name' || r.field === 'metadata.namespace'),
  };
}

/** The stored versions a list returns, without materializing objects (the HTTP surface serializes them directly). */
export async function listVersions(store: Store, codec: ObjectCodec, kind: KindDeclaration, query: ListVersionsQuery = {}, current?: CurrentState): Promise<ListedVersions> {
  const matches = kvMatcherFor(kind, query, codec);
  const prefix = prefixFor(kind, namespaceOf(kind, query.namespace));
  const limit = query.limit && query.limit > 0 ? query.limit : 0;
  let revision = 0;
  let startAfter: string | undefined;
  if (query.continue) {
    const t = decodeContinue(query.continue);
    revision = t.revision;
    startAfter = t.startAfter;
    if (!startAfter.startsWith(prefix)) throw ApiError.badRequest('invalid continue token: it belongs to another list');
    const compacted = await store.compactedRevision();
    if (revision <= compacted) {
      throw new ApiError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
    }
  } else if (query.resourceVersion && query.resourceVersion !== '0') {
    const rv = parseResourceVersion(query.resourceVersion);
    if (query.resourceVersionMatch === 'Exact') {
      revision = rv;
      // History below the compacted revision is gone, even where memory could answer: 410 from the store.
      if (rv < (await store.compactedRevision())) current = undefined;
    } else {
      const cur = await store.currentRevision();
      if (rv > cur) throw new ApiError(504, 'Timeout', `Too large resource version: ${rv}, current: ${cur}`, { retryAfterSeconds: 1 });
    }
  }
  if (current && servesPrefix(prefix)) {
    // `revision` is 0 for a current list, else an Exact one or a continue token's: served from memory while
    // nothing under the collection has changed since (its state then is the current one).
    const fromMemory = await current.read((view) => {
      if (revision === 0) return listView(view, view.revision, prefix, startAfter, limit, matches);
      return revision <= view.revision && view.changedAt(prefix) <= revision ? listView(view, revision, prefix, startAfter, limit, matches) : undefined;
    });
    if (fromMemory) return fromMemory;
  }
  const items: KeyValue[] = [];
  let more = false;
  let remaining: number | undefined;
  let lastKey: string | undefined;
  // With a selector, keep reading pages until `limit` matches are found (kube does the same).
  const pageSize = limit ? (matches ? Math.max(limit, 500) : limit) : 0;
  for (;;) {
    const page = await store.list(prefix, { revision, limit: pageSize, startAfter });
    revision = page.revision;
    let stoppedEarly = false;
    for (const kv of page.items) {
      lastKey = kv.key;
      if (matches && !matches(kv)) continue;
      items.push(kv);
      if (limit && items.length >= limit) {
        stoppedEarly = kv !== page.items[page.items.length - 1];
        break;
      }
    }
    if (limit && items.length >= limit) {
      more = stoppedEarly || page.more;
      if (!matches && !stoppedEarly) remaining = page.remaining;
      break;
    }
    if (!page.more) break;
    startAfter = lastKey;
  }
  const out: ListedVersions = { kvs: items, resourceVersion: String(revision) };
  if (more && items.length) {
    out.continue = encodeContinue(revision, items[items.length - 1].key);
    if (remaining !== undefined) out.remainingItemCount = remaining;
  }
  return out;
}

/** One page of a list from the current state, with the same paging and selector rules as the store's loop. */
function listView(view: CurrentView, at: number, prefix: string, startAfter: string | undefined, limit: number, matches: KvMatcher | undefined): ListedVersions {
  const { keys, start, end } = view.range(prefix, startAfter);
  const items: KeyValue[] = [];
  let i = start;
  while (i < end && (!limit || items.length < limit)) {
    const kv = view.get(keys[i++]!)!;
    if (matches && !matches(kv)) continue;
    items.push(kv);
  }
  const out: ListedVersions = { kvs: items, resourceVersion: String(at) };
  // As from the store: a continue token whenever keys follow the last item (matching or not), and the count of
  // what follows when there is no selector.
  if (limit && items.length >= limit && i < end) {
    out.continue = encodeContinue(at, items[items.length - 1]!.key);
    if (!matches) out.remainingItemCount = end - i;
  }
  return out;
}
