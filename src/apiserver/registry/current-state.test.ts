// The current state's size, as the metrics report it: every live object and the length of its stored text,
// kept right across creates, updates and deletes, and the same after a restart loads it from the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStore } from '../../store/sqlite/sqlite-store.js';
import { KindRegistry, allKinds, configMapKind, namespaceKind, STORE_KEY_PREFIX } from '../../kinds/index.js';
import { Registry } from '../registry.js';

test('the current state reports its objects and their text length through writes and a restart', async (t) => {
  const store = openSqliteStore(':memory:');
  t.after(() => store.close());
  const kinds = new KindRegistry(allKinds);
  const reg = new Registry({ store, kinds });
  assert.equal(reg.currentStateSize(), undefined, 'not serving before start');
  await reg.start();
  const inStore = async () => {
    const all = await store.list(STORE_KEY_PREFIX);
    return { objects: all.items.length, textLength: all.items.reduce((n, kv) => n + kv.value.length, 0) };
  };
  const settled = async () => {
    // The map follows the store's watch: wait until it has caught up with the last write.
    for (let i = 0; i < 100 && JSON.stringify(reg.currentStateSize()) !== JSON.stringify(await inStore()); i++) await new Promise((r) => setImmediate(r));
    return reg.currentStateSize();
  };
  await reg.create(namespaceKind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
  const base = (await settled())!;
  await reg.create(configMapKind, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'default' }, data: { k: 'x'.repeat(100) } });
  const one = (await settled())!;
  assert.equal(one.objects, base.objects + 1);
  assert.ok(one.textLength > base.textLength + 100);
  const cur = (await reg.get(configMapKind, 'default', 'a'))!;
  await reg.update(configMapKind, { ...cur, data: { k: 'y' } });
  const smaller = (await settled())!;
  assert.equal(smaller.objects, one.objects);
  assert.ok(smaller.textLength < one.textLength - 90, 'an update replaces the old text');
  assert.deepEqual(smaller, await inStore());
  await reg.delete(configMapKind, 'default', 'a');
  assert.deepEqual(await settled(), base);
  reg.close();

  const again = new Registry({ store, kinds });
  await again.start();
  t.after(() => again.close());
  assert.deepEqual(again.currentStateSize(), await inStore(), 'loaded at start');
});
