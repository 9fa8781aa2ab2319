// Lists from the in-memory current state must be the lists the store gives: the same items in the same order,
// the same resourceVersion, continue tokens and remainingItemCount, page after page, across creates, deletes
// and label changes in several namespaces, with and without selectors. A continue token (or Exact read) at a
// revision after which the collection changed is served from the store's history (or 410 once compacted), not
// from the newer memory; after changes elsewhere only, memory answers it the same.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStore } from '../../store/sqlite/sqlite-store.js';
import type { Store } from '../../store/types.js';
import { KindRegistry, allKinds } from '../../kinds/index.js';
import type { KindDeclaration, KubeObject } from '../../kinds/types.js';
import { Registry } from '../registry.js';
import { ObjectCodec } from './codec.js';
import { CurrentState } from './current-state.js';
import { listVersions, type ListedVersions, type ListVersionsQuery } from './list.js';
import { isGone } from '../../lib/errors.js';
import { toApiError } from '../status.js';

const NAMESPACES = ['alpha', 'beta', 'gamma'];

function cm(ns: string, name: string, tier: string): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns, labels: { tier } }, data: { a: name } };
}

/** A deterministic pseudo-random sequence, so a failure replays. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function shape(l: ListedVersions): unknown {
  return { keys: l.kvs.map((kv) => `${kv.key}@${kv.modRevision}`), rv: l.resourceVersion, continue: l.continue, remaining: l.remainingItemCount };
}

describe('lists from the current state', () => {
  let store: Store;
  let reg: Registry;
  let current: CurrentState;
  let cmKind: KindDeclaration;
  const codec = new ObjectCodec();

  before(async () => {
    store = openSqliteStore(':memory:');
    reg = new Registry({ store, kinds: new KindRegistry(allKinds) });
    cmKind = reg.kind('', 'ConfigMap');
    await reg.start();
    for (const name of NAMESPACES) await reg.create(reg.kind('', 'Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    current = new CurrentState(store);
    await current.start();
  });
  after(async () => {
    current.close();
    reg.close();
    await store.close();
  });

  const queries: Array<{ name: string; query: ListVersionsQuery }> = [
    { name: 'all namespaces', query: {} },
    { name: 'one namespace', query: { namespace: 'beta' } },
    { name: 'all namespaces, pages of 7', query: { limit: 7 } },
    { name: 'one namespace, pages of 3', query: { namespace: 'alpha', limit: 3 } },
    { name: 'label selector, pages of 4', query: { labelSelector: 'tier=web', limit: 4 } },
    { name: 'field selector in a namespace', query: { namespace: 'gamma', fieldSelector: 'metadata.name!=cm-3' } },
    { name: 'set selector, pages of 1', query: { labelSelector: 'tier in (db,cache)', limit: 1 } },
    { name: 'resourceVersion=0', query: { resourceVersion: '0', limit: 5 } },
    { name: 'an empty namespace', query: { namespace: 'nowhere', limit: 2 } },
  ];

  it('gives every page the store gives, through random creates, deletes and label changes', async () => {
    const rand = prng(20);
    const tiers = ['web', 'db', 'cache'];
    const live = new Set<string>();
    for (let round = 0; round < 12; round++) {
      for (let w = 0; w < 25; w++) {
        const ns = NAMESPACES[Math.floor(rand() * NAMESPACES.length)]!;
        const name = `cm-${Math.floor(rand() * 40)}`;
        const id = `${ns}/${name}`;
        const tier = tiers[Math.floor(rand() * tiers.length)]!;
        if (!live.has(id)) {
          await reg.create(cmKind, cm(ns, name, tier));
          live.add(id);
        } else if (rand() < 0.4) {
          await reg.delete(cmKind, ns, name);
          live.delete(id);
        } else await reg.mergePatch(cmKind, ns, name, { metadata: { labels: { tier } } });
      }
      for (const { name, query } of queries) {
        // Page by page: each page from memory against the same page from the store, continuing from the same token.
        let token: string | undefined;
        for (let page = 0; page < 100; page++) {
          const q = { ...query, continue: token };
          const fromStore = await listVersions(store, codec, cmKind, q);
          const fromMemory = await listVersions(store, codec, cmKind, q, current);
          assert.deepEqual(shape(fromMemory), shape(fromStore), `round ${round}, ${name}, page ${page}`);
          token = fromStore.continue;
          if (!token) break;
        }
      }
    }
    assert.ok(live.size > 20, 'the run leaves objects to list');
  });

  it('serves a continue token from history once the state has moved on, and 410 once that is compacted', async () => {
    const first = await listVersions(store, codec, cmKind, { limit: 2 }, current);
    assert.ok(first.continue);
    const expected = await listVersions(store, codec, cmKind, { limit: 2, continue: first.continue });
    // A write after the first page: the second page is still the state at the first page's revision.
    const victim = expected.kvs[0]!;
    const [ns, name] = victim.key.split('/').slice(-2) as [string, string];
    await reg.delete(cmKind, ns, name);
    await reg.create(cmKind, cm('alpha', 'aaa-first', 'web'));
    const second = await listVersions(store, codec, cmKind, { limit: 2, continue: first.continue }, current);
    assert.deepEqual(shape(second), shape(expected));
    assert.equal(second.resourceVersion, first.resourceVersion);
    await store.compact(await store.currentRevision());
    await assert.rejects(listVersions(store, codec, cmKind, { limit: 2, continue: first.continue }, current), (e: unknown) => isGone(e));
  });

  it('answers a continue token and an Exact read from memory while only other collections changed', async () => {
    // (A revision past the earlier test's compaction: a token at the compacted revision itself is refused.)
    await reg.create(cmKind, cm('gamma', 'after-compaction', 'web'));
    const first = await listVersions(store, codec, cmKind, { limit: 3 }, current);
    assert.ok(first.continue);
    // Writes elsewhere move the revision on but leave the ConfigMaps as they were at the first page.
    await reg.create(reg.kind('', 'Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'elsewhere' } });
    await reg.create(reg.kind('', 'Secret'), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'elsewhere' }, data: { a: 'Yg==' } });
    assert.ok((await store.currentRevision()) > Number(first.resourceVersion));
    for (const q of [{ limit: 3, continue: first.continue }, { limit: 4, resourceVersion: first.resourceVersion, resourceVersionMatch: 'Exact' }]) {
      const fromStore = await listVersions(store, codec, cmKind, q);
      const fromMemory = await listVersions(store, codec, cmKind, q, current);
      assert.deepEqual(shape(fromMemory), shape(fromStore), JSON.stringify(q));
      assert.equal(fromMemory.resourceVersion, first.resourceVersion);
    }
    // Compacted away: 410 as the store says, though memory still holds that state.
    await store.compact(await store.currentRevision());
    const exact = { limit: 4, resourceVersion: first.resourceVersion, resourceVersionMatch: 'Exact' };
    // (The store's Compacted error, which the HTTP surface answers as 410 Expired.)
    await assert.rejects(listVersions(store, codec, cmKind, exact), (e: unknown) => isGone(toApiError(e)));
    await assert.rejects(listVersions(store, codec, cmKind, exact, current), (e: unknown) => isGone(toApiError(e)));
  });

  it('label and name selectors read shared metadata projections: a collection is parsed once, not on every list', async () => {
    const fresh = new ObjectCodec();
    // More objects than the codec's few recent decodes, so only the projections can spare the parses.
    for (let i = 0; i < 300; i++) await reg.create(cmKind, cm('alpha', `sel-${i}`, i % 3 === 0 ? 'edge' : 'core'));
    const total = (await listVersions(store, fresh, cmKind, {}, current)).kvs.length;
    // Count the parses of stored objects (a stored text starts with its apiVersion).
    const parse = JSON.parse;
    let parses = 0;
    JSON.parse = ((text: string, ...rest: []) => {
      if (typeof text === 'string' && text.startsWith('{"apiVersion"')) parses++;
      return parse(text, ...rest);
    }) as typeof JSON.parse;
    try {
      const first = await listVersions(store, fresh, cmKind, { labelSelector: 'tier=edge' }, current);
      assert.equal(first.kvs.length, 100);
      assert.equal(parses, total, 'each object parsed once, to project it');
      for (const q of [{ labelSelector: 'tier=edge' }, { labelSelector: 'tier!=edge', fieldSelector: 'metadata.namespace=alpha' }, { fieldSelector: 'metadata.name=sel-3' }]) {
        await listVersions(store, fresh, cmKind, q, current);
      }
      assert.equal(parses, total, 'no parse for later selector lists');
    } finally {
      JSON.parse = parse;
    }
    // A selector on another field (Secrets' type) needs the whole object.
    const secretKind = reg.kind('', 'Secret');
    await reg.create(secretKind, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'typed', namespace: 'alpha' }, type: 'example.com/x', data: {} });
    const typed = await listVersions(store, fresh, secretKind, { fieldSelector: 'type=example.com/x' }, current);
    assert.deepEqual(typed.kvs.map((kv) => kv.key.split('/').pop()), ['typed']);
  });

  it('a current list includes a write acknowledged just before it, at its revision or later', async () => {
    for (let i = 0; i < 20; i++) {
      const created = await reg.create(cmKind, cm('beta', `ack-${i}`, 'db'));
      const l = await listVersions(store, codec, cmKind, { namespace: 'beta', fieldSelector: `metadata.name=ack-${i}` }, current);
      assert.equal(l.kvs.length, 1);
      assert.ok(Number(l.resourceVersion) >= Number(created.metadata.resourceVersion));
    }
  });
});
