// The IP claims (IPAddress objects) as the allocator reads them, and one index of them per informer, kept up to
// date by the informer's events, for every planner that reads that informer.
import type { IPAddressSpec } from '../../kinds/ip-address.js';
import type { StoredObject } from '../../kinds/types.js';
import type { Informer } from '../../runtime/informer.js';
import { ClaimIndex, type Claim } from './allocate.js';

/** What an IPAddress claims. */
export function claimOf(a: StoredObject): Claim {
  const s = a.spec as IPAddressSpec;
  return { key: a.metadata.name, pool: s.pool, family: s.family, network: s.network, prefix: s.prefix, project: s.project, kind: s.use };
}

const indexes = new WeakMap<Informer, ClaimIndex>();

/**
 * The index of the claims in `ips`'s cache. The informer calls its handlers right after each change to its cache
 * (and, for a handler added once synced, with every cached object first), so the index agrees with the cache
 * whenever a planner reads both. One per informer: the schedulers and reservation controllers of one server share it.
 */
export function claimIndexOf(ips: Informer): ClaimIndex {
  let index = indexes.get(ips);
  if (!index) {
    const ix = new ClaimIndex();
    ips.addHandler({
      onAdd: (o) => ix.set(claimOf(o)),
      onUpdate: (old, o) => {
        if (old !== o) ix.set(claimOf(o));
      },
      onDelete: (o) => ix.delete(o.metadata.name),
    });
    indexes.set(ips, (index = ix));
  }
  return index;
}
