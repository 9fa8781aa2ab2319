// The Store conformance suite: behaviour every backend (SQLite now, PostgreSQL next) must show, unchanged.
// A backend's test file calls `runStoreConformance(name, open)`; `open` must return a fresh, empty store.
// The suite only relies on the Store interface: revisions are compared by order, never assumed consecutive
// (a PostgreSQL sequence may skip numbers), and waiting for watch events is bounded, never a sleep.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isStoreError, type StoreErrorCode } from '../errors.js';
import type { KeyValue, Store, StoreEvent, WriteOp } from '../types.js';

/** How long a test waits for watch events before failing. */
const EVENT_TIMEOUT_MS = 5000;

export function runStoreConformance(
  name: string,
  open: () => Promise<Store>,
  close: (s: Store) => Promise<void> = (s) => s.close(),
): void {
  /** A test body that gets a fresh store, closed afterwards whatever happens. */
  const withStore = (fn: (s: Store) => Promise<void>) => async () => {
    const s = await open();
    try {
      await fn(s);
    } finally {
      await close(s);
    }
  };

  describe(`Store conformance: ${name}`, () => {
    describe('single-key writes', () => {
      it(
        'create, get, update, delete round-trip with increasing revisions',
        withStore(async (s) => {
          assert.equal(await s.currentRevision(), 0, 'a fresh store is at revision 0');
          const created = await s.create('/rt/a', 'v1');
          assert.deepEqual(created, { key: '/rt/a', value: 'v1', createRevision: created.modRevision, modRevision: created.modRevision });
          assert.ok(created.modRevision > 0);
          assert.equal(await s.currentRevision(), created.modRevision);
          assert.deepEqual(await s.get('/rt/a'), created);

          const updated = await s.update('/rt/a', 'v2');
          assert.ok(updated.modRevision > created.modRevision, 'update gets a newer revision');
          assert.deepEqual(updated, { key: '/rt/a', value: 'v2', createRevision: created.modRevision, modRevision: updated.modRevision });
          assert.deepEqual(await s.get('/rt/a'), updated);

          const updated2 = await s.update('/rt/a', 'v3', updated.modRevision);
          assert.ok(updated2.modRevision > updated.modRevision);

          const deleted = await s.delete('/rt/a', updated2.modRevision);
          assert.ok(deleted.modRevision > updated2.modRevision, 'delete gets a newer revision');
          assert.deepEqual(deleted, { key: '/rt/a', value: 'v3', createRevision: created.modRevision, modRevision: deleted.modRevision });
          assert.equal(await s.get('/rt/a'), undefined);
          assert.equal(await s.currentRevision(), deleted.modRevision);
        }),
      );

      it(
        'a re-create after delete gets a new createRevision',
        withStore(async (s) => {
          const first = await s.create('/re/a', 'v1');
          const del = await s.delete('/re/a');
          const again = await s.create('/re/a', 'v2');
          assert.ok(again.createRevision > del.modRevision);
          assert.equal(again.createRevision, again.modRevision);
          assert.notEqual(again.createRevision, first.createRevision);
          assert.deepEqual(await s.get('/re/a'), again);
        }),
      );

      const failures: {
        name: string;
        setup: (s: Store) => Promise<KeyValue | undefined>;
        write: (s: Store, kv: KeyValue | undefined) => Promise<unknown>;
        code: StoreErrorCode;
        mentions: (kv: KeyValue | undefined) => string[];
      }[] = [
        {
          name: 'create of an existing key: 409 AlreadyExists',
          setup: (s) => s.create('/f/a', 'v'),
          write: (s) => s.create('/f/a', 'other'),
          code: 'KeyExists',
          mentions: () => ['/f/a'],
        },
        {
          name: 'update of an absent key: 404 NotFound',
          setup: async () => undefined,
          write: (s) => s.update('/f/a', 'v'),
          code: 'KeyNotFound',
          mentions: () => ['/f/a'],
        },
        {
          name: 'delete of an absent key: 404 NotFound',
          setup: async () => undefined,
          write: (s) => s.delete('/f/a'),
          code: 'KeyNotFound',
          mentions: () => ['/f/a'],
        },
        {
          name: 'update of a deleted key: 404 NotFound',
          setup: async (s) => {
            await s.create('/f/a', 'v');
            return s.delete('/f/a');
          },
          write: (s) => s.update('/f/a', 'v2'),
          code: 'KeyNotFound',
          mentions: () => ['/f/a'],
        },
        {
          name: 'update with a stale expectedRevision: 409 Conflict naming key and revisions',
          setup: async (s) => {
            const kv = await s.create('/f/a', 'v1');
            await s.update('/f/a', 'v2');
            return kv;
          },
          write: (s, kv) => s.update('/f/a', 'v3', kv!.modRevision),
          code: 'RevisionMismatch',
          mentions: (kv) => ['/f/a', String(kv!.modRevision)],
        },
        {
          name: 'delete with a stale expectedRevision: 409 Conflict naming key and revisions',
          setup: async (s) => {
            const kv = await s.create('/f/a', 'v1');
            await s.update('/f/a', 'v2');
            return kv;
          },
          write: (s, kv) => s.delete('/f/a', kv!.modRevision),
          code: 'RevisionMismatch',
          mentions: (kv) => ['/f/a', String(kv!.modRevision)],
        },
      ];
      for (const tc of failures) {
        it(
          tc.name,
          withStore(async (s) => {
            const kv = await tc.setup(s);
            const before = await s.currentRevision();
            const valueBefore = await s.get('/f/a');
            await assertStoreError(tc.write(s, kv), tc.code, tc.mentions(kv));
            assert.equal(await s.currentRevision(), before, 'a failed write writes nothing');
            assert.deepEqual(await s.get('/f/a'), valueBefore);
          }),
        );
      }

      it(
        'a stale-revision Conflict names the current revision too',
        withStore(async (s) => {
          const v1 = await s.create('/f/b', 'v1');
          const v2 = await s.update('/f/b', 'v2');
          await assertStoreError(s.update('/f/b', 'v3', v1.modRevision), 'RevisionMismatch', ['/f/b', String(v1.modRevision), String(v2.modRevision)]);
        }),
      );
    });

    describe('list and get', () => {
      it(
        'lists only keys under the prefix, sorted, skipping deleted ones',
        withStore(async (s) => {
          const keys = ['/a/b/c', '/ab/x', '/a/z', '/a', '/a/b', '/a/ba', '/b/a', '/a/0', '/a/gone'];
          for (const k of shuffled(keys)) await s.create(k, `value of ${k}`);
          await s.delete('/a/gone');
          const rev = await s.currentRevision();
          const cases: { prefix: string; want: string[] }[] = [
            { prefix: '/a/', want: ['/a/0', '/a/b', '/a/b/c', '/a/ba', '/a/z'] },
            { prefix: '/ab/', want: ['/ab/x'] },
            { prefix: '/a/b', want: ['/a/b', '/a/b/c', '/a/ba'] },
            { prefix: '/a', want: ['/a', '/a/0', '/a/b', '/a/b/c', '/a/ba', '/a/z', '/ab/x'] },
            { prefix: '/c/', want: [] },
            { prefix: '', want: ['/a', '/a/0', '/a/b', '/a/b/c', '/a/ba', '/a/z', '/ab/x', '/b/a'] },
          ];
          for (const c of cases) {
            const res = await s.list(c.prefix);
            assert.deepEqual(res.items.map((kv) => kv.key), c.want, `list(${JSON.stringify(c.prefix)})`);
            assert.equal(res.revision, rev);
            assert.equal(res.more, false);
            for (const kv of res.items) assert.equal(kv.value, `value of ${kv.key}`);
            assert.equal(await s.count(c.prefix), c.want.length, `count(${JSON.stringify(c.prefix)})`);
          }
        }),
      );

      it(
        'paginates with limit + startAfter consistently at a fixed revision while writes happen between pages',
        withStore(async (s) => {
          const keys = Array.from({ length: 25 }, (_, i) => `/p/k${String(i).padStart(2, '0')}`);
          for (const k of keys) await s.create(k, `v0 ${k}`);
          await s.create('/pz', 'outside the prefix');

          const first = await s.list('/p/', { limit: 10 });
          assert.equal(first.items.length, 10);
          assert.equal(first.more, true);
          assert.equal(first.remaining, 15);
          const rev = first.revision;
          const seen = [...first.items];
          let page = first;
          let turn = 0;
          while (page.more) {
            // Writes between pages: before and after the cursor, creates, updates and deletes.
            turn++;
            await s.create(`/p/k${String(turn).padStart(2, '0')}x`, 'new');
            await s.update(keys[24 - turn], 'changed');
            await s.delete(keys[turn]);
            await s.create('/p/a-first', `new ${turn}`).catch(() => s.update('/p/a-first', `new ${turn}`));
            page = await s.list('/p/', { limit: 10, revision: rev, startAfter: page.items[page.items.length - 1].key });
            assert.equal(page.revision, rev, 'every page is read at the first page revision');
            seen.push(...page.items);
          }
          assert.equal(page.remaining ?? 0, 0);
          assert.deepEqual(seen.map((kv) => kv.key), keys, 'pages concatenate to the list at the first revision');
          for (const kv of seen) assert.equal(kv.value, `v0 ${kv.key}`);
          assert.deepEqual(seen, (await s.list('/p/', { revision: rev })).items);

          const now = await s.list('/p/', { limit: 100 });
          assert.equal(now.more, false);
          assert.ok(now.revision > rev);
          assert.ok(now.items.some((kv) => kv.key === '/p/a-first'));

          const exact = await s.list('/p/', { limit: now.items.length });
          assert.equal(exact.more, false, 'a page that ends exactly at the last key has no more');
        }),
      );

      it(
        'get and list at an old revision see the values of that revision',
        withStore(async (s) => {
          const a1 = await s.create('/old/a', 'a1');
          const b1 = await s.create('/old/b', 'b1');
          const r1 = await s.currentRevision();
          const a2 = await s.update('/old/a', 'a2');
          await s.delete('/old/b');
          const c1 = await s.create('/old/c', 'c1');

          assert.deepEqual(await s.get('/old/a', a1.modRevision), a1);
          assert.equal(await s.get('/old/b', a1.modRevision), undefined, 'not yet created');
          assert.deepEqual(await s.get('/old/b', r1), b1);
          assert.equal(await s.get('/old/b'), undefined);
          assert.deepEqual(await s.list('/old/', { revision: r1 }), { items: [a1, b1], revision: r1, more: false });
          assert.deepEqual((await s.list('/old/')).items, [a2, c1]);
        }),
      );

      it(
        'a revision newer than the current one is refused with 504 Timeout',
        withStore(async (s) => {
          await s.create('/new/a', 'v');
          const cur = await s.currentRevision();
          await assertStoreError(s.get('/new/a', cur + 1000), 'FutureRevision', [String(cur + 1000)]);
          await assertStoreError(s.list('/new/', { revision: cur + 1000 }), 'FutureRevision', [String(cur + 1000)]);
        }),
      );
    });

    describe('commit', () => {
      it(
        'applies several ops atomically and returns one KeyValue per op, in order',
        withStore(async (s) => {
          const b = await s.create('/tx/b', 'b1');
          await s.create('/tx/c', 'c1');
          const res = await s.commit([
            { op: 'create', key: '/tx/a', value: 'a1' },
            { op: 'update', key: '/tx/b', value: 'b2', expectedRevision: b.modRevision },
            { op: 'delete', key: '/tx/c' },
            { op: 'update', key: '/tx/a', value: 'a2' },
          ]);
          assert.equal(res.length, 4);
          assert.deepEqual(
            res.map((kv) => [kv.key, kv.value]),
            [
              ['/tx/a', 'a1'],
              ['/tx/b', 'b2'],
              ['/tx/c', 'c1'],
              ['/tx/a', 'a2'],
            ],
          );
          assertIncreasing(res.map((kv) => kv.modRevision));
          assert.equal(res[3].createRevision, res[0].modRevision, 'later ops see earlier ops of the same commit');
          assert.deepEqual((await s.list('/tx/')).items, [res[3], res[1]]);
          assert.deepEqual(await s.commit([]), []);
        }),
      );

      const failing: { name: string; ops: WriteOp[]; code: StoreErrorCode; key: string }[] = [
        {
          name: 'an absent key in the middle',
          ops: [
            { op: 'create', key: '/tx/new', value: 'n' },
            { op: 'update', key: '/tx/missing', value: 'x' },
            { op: 'update', key: '/tx/here', value: 'changed' },
          ],
          code: 'KeyNotFound',
          key: '/tx/missing',
        },
        {
          name: 'an existing key at the end',
          ops: [
            { op: 'update', key: '/tx/here', value: 'changed' },
            { op: 'create', key: '/tx/new', value: 'n' },
            { op: 'create', key: '/tx/here', value: 'dup' },
          ],
          code: 'KeyExists',
          key: '/tx/here',
        },
        {
          name: 'a stale expectedRevision',
          ops: [
            { op: 'delete', key: '/tx/here' },
            { op: 'create', key: '/tx/new', value: 'n' },
            { op: 'update', key: '/tx/other', value: 'x', expectedRevision: 1 },
          ],
          code: 'RevisionMismatch',
          key: '/tx/other',
        },
        {
          name: 'the same key created twice',
          ops: [
            { op: 'create', key: '/tx/new', value: 'n' },
            { op: 'create', key: '/tx/new', value: 'n again' },
          ],
          code: 'KeyExists',
          key: '/tx/new',
        },
      ];
      for (const tc of failing) {
        it(
          `writes nothing when one op fails (${tc.name}) and names the key`,
          withStore(async (s) => {
            await s.create('/tx/here', 'here');
            await s.create('/tx/pad', 'pad');
            await s.update('/tx/pad', 'pad2');
            await s.create('/tx/other', 'other');
            const before = await s.list('/tx/');
            await assertStoreError(s.commit(tc.ops), tc.code, [tc.key]);
            assert.equal(await s.currentRevision(), before.revision, 'nothing written');
            assert.deepEqual(await s.list('/tx/'), before);
          }),
        );
      }

      it(
        'a failing commit does not affect concurrent writes by others',
        withStore(async (s) => {
          await s.create('/tx/here', 'here');
          const [ok1, bad, ok2] = await Promise.allSettled([
            s.create('/tx/one', '1'),
            s.commit([
              { op: 'create', key: '/tx/two', value: '2' },
              { op: 'create', key: '/tx/here', value: 'dup' },
            ]),
            s.commit([{ op: 'update', key: '/tx/here', value: 'here2' }]),
          ]);
          assert.equal(ok1.status, 'fulfilled');
          assert.equal(bad.status, 'rejected');
          assert.equal(ok2.status, 'fulfilled');
          assert.deepEqual(
            (await s.list('/tx/')).items.map((kv) => [kv.key, kv.value]),
            [
              ['/tx/here', 'here2'],
              ['/tx/one', '1'],
            ],
          );
        }),
      );

      it(
        'a check writes nothing, takes no revision and lets the commit through only while its key is at that revision',
        withStore(async (s) => {
          const lease = await s.create('/tx/lease', 'holder-a');
          const rec = new Recorder();
          const w = await s.watch('/tx/', { fromRevision: lease.modRevision, onEvents: rec.onEvents, onError: rec.onError });
          try {
            const [seen, written] = await s.commit([
              { op: 'check', key: '/tx/lease', expectedRevision: lease.modRevision },
              { op: 'create', key: '/tx/obj', value: 'o1' },
            ]);
            assert.deepEqual(seen, lease, 'a check returns the version it found');
            assert.deepEqual(await s.get('/tx/lease'), lease, 'the checked key is not written');
            assert.equal(await s.currentRevision(), written.modRevision, 'the check took no revision of its own');
            // A commit of checks alone writes nothing at all.
            assert.deepEqual(await s.commit([{ op: 'check', key: '/tx/lease', expectedRevision: lease.modRevision }]), [lease]);
            assert.equal(await s.currentRevision(), written.modRevision);

            const moved = await s.update('/tx/lease', 'holder-b');
            const refused: { name: string; ops: WriteOp[]; code: StoreErrorCode }[] = [
              { name: 'the key moved on', ops: [{ op: 'update', key: '/tx/obj', value: 'o2' }, { op: 'check', key: '/tx/lease', expectedRevision: lease.modRevision }], code: 'RevisionMismatch' },
              { name: 'an earlier op of the same commit moved it', ops: [{ op: 'update', key: '/tx/lease', value: 'holder-c' }, { op: 'check', key: '/tx/lease', expectedRevision: moved.modRevision }], code: 'RevisionMismatch' },
              { name: 'the key is absent', ops: [{ op: 'check', key: '/tx/nolease', expectedRevision: moved.modRevision }, { op: 'update', key: '/tx/obj', value: 'o2' }], code: 'KeyNotFound' },
            ];
            for (const tc of refused) {
              const before = await s.currentRevision();
              await assertStoreError(s.commit(tc.ops), tc.code, [tc.ops.find((o) => o.op === 'check')!.key], `${tc.name}:`);
              assert.equal(await s.currentRevision(), before, `${tc.name}: nothing written`);
            }
            assert.equal((await s.get('/tx/obj'))?.value, 'o1');
            await rec.untilRevision(moved.modRevision);
            assert.deepEqual(
              rec.events.map((e) => [e.type, e.kv.key]),
              [
                ['create', '/tx/obj'],
                ['update', '/tx/lease'],
              ],
              'checks make no events',
            );
          } finally {
            w.cancel();
          }
        }),
      );
    });

    describe('watch', () => {
      it(
        'replays exactly the missed events from a revision, then follows live',
        withStore(async (s) => {
          const written: KeyValue[] = [];
          for (let i = 0; i < 5; i++) written.push(await s.create(`/w/k${i}`, `v${i}`));
          const from = written[1].modRevision;
          const rec = new Recorder();
          const handle = await s.watch('/w/', { fromRevision: from, onEvents: rec.onEvents, onError: rec.onError });
          written.push(await s.update('/w/k0', 'v0b'));
          written.push(await s.delete('/w/k1'));
          written.push(await s.create('/w/k9', 'v9'));
          const last = written[written.length - 1].modRevision;
          await rec.untilRevision(last);
          handle.cancel();
          assert.deepEqual(
            rec.events.map((e) => [e.type, e.kv.key, e.kv.modRevision]),
            [
              ['create', '/w/k2', written[2].modRevision],
              ['create', '/w/k3', written[3].modRevision],
              ['create', '/w/k4', written[4].modRevision],
              ['update', '/w/k0', written[5].modRevision],
              ['delete', '/w/k1', written[6].modRevision],
              ['create', '/w/k9', written[7].modRevision],
            ],
          );
          assert.equal(rec.error, undefined);
        }),
      );

      it(
        'fromRevision = current revision delivers only later events; fromRevision 0 means from now',
        withStore(async (s) => {
          await s.create('/w0/a', 'a');
          const cur = await s.currentRevision();
          const fromCur = new Recorder();
          const fromZero = new Recorder();
          await s.watch('/w0/', { fromRevision: cur, onEvents: fromCur.onEvents });
          await s.watch('/w0/', { fromRevision: 0, onEvents: fromZero.onEvents });
          const b = await s.create('/w0/b', 'b');
          await fromCur.untilRevision(b.modRevision);
          await fromZero.untilRevision(b.modRevision);
          for (const rec of [fromCur, fromZero]) assert.deepEqual(rec.events.map((e) => e.kv.key), ['/w0/b']);
        }),
      );

      it(
        'filters by prefix',
        withStore(async (s) => {
          const prefixes = ['/a/', '/ab/', '/a', '', '/a/b'];
          const recs = new Map<string, Recorder>();
          for (const p of prefixes) {
            const rec = new Recorder();
            recs.set(p, rec);
            await s.watch(p, { fromRevision: 0, onEvents: rec.onEvents });
          }
          const keys = ['/a/1', '/ab/1', '/abc', '/a/b/2', '/a', '/b/1', '/a/2'];
          // Written concurrently so that (on a batching backend) one batch holds keys of every prefix.
          const kvs = await Promise.all(keys.map((k) => s.create(k, k)));
          // Then one end marker per prefix: once a watcher saw its last expected event, any wrong event
          // (which would have an older revision) must already have arrived.
          for (const p of prefixes) kvs.push(await s.create(`${p}~end`, 'end'));
          for (const p of prefixes) {
            const rec = recs.get(p)!;
            const want = kvs.filter((kv) => kv.key.startsWith(p)).sort((x, y) => x.modRevision - y.modRevision);
            await rec.untilRevision(want[want.length - 1].modRevision);
            assert.deepEqual(
              rec.events.map((e) => e.kv.key),
              want.map((kv) => kv.key),
              `watch(${JSON.stringify(p)})`,
            );
          }
        }),
      );

      it(
        'create, update and delete events carry values and prevKv, the same live and replayed',
        withStore(async (s) => {
          await s.create('/ev-before', 'x'); // so that `base` is a real revision (0 would mean "from now")
          const base = await s.currentRevision();
          const live = new Recorder();
          await s.watch('/ev/', { fromRevision: 0, onEvents: live.onEvents });
          const c = await s.create('/ev/k', 'v1');
          const u = await s.update('/ev/k', 'v2');
          const d = await s.delete('/ev/k');
          const r = await s.create('/ev/k', 'v3');
          const want: StoreEvent[] = [
            { type: 'create', kv: c },
            { type: 'update', kv: u, prevKv: c },
            { type: 'delete', kv: { key: '/ev/k', value: 'v2', createRevision: c.createRevision, modRevision: d.modRevision }, prevKv: u },
            { type: 'create', kv: r },
          ];
          await live.untilRevision(r.modRevision);
          assert.deepEqual(live.events.map(plain), want);
          const replayed = new Recorder();
          await s.watch('/ev/', { fromRevision: base, onEvents: replayed.onEvents });
          await replayed.untilRevision(r.modRevision);
          assert.deepEqual(replayed.events.map(plain), want);
        }),
      );

      it(
        'a burst of 500 concurrent creates reaches watchers attaching during it without gaps or duplicates',
        withStore(async (s) => {
          await s.create('/burst-other', 'noise');
          const watchers: { from: number; rec: Recorder }[] = [];
          const attach = async (): Promise<void> => {
            const from = await s.currentRevision();
            const rec = new Recorder();
            await s.watch('/burst/', { fromRevision: from, onEvents: rec.onEvents, onError: rec.onError });
            watchers.push({ from, rec });
          };
          await attach();
          const writes: Promise<KeyValue>[] = [];
          const attaching: Promise<void>[] = [];
          for (let i = 0; i < 500; i++) {
            writes.push(s.create(`/burst/k${String(i).padStart(3, '0')}`, `v${i}`));
            if (i % 50 === 25) {
              attaching.push(attach()); // attaches while writes are queued and in flight
              // Let some of the burst commit between attachments: one turn is not enough for a store whose commits
              // take real time elsewhere (a writer thread, a database server), so wait for an earlier write of it.
              await writes[i - 25];
            }
          }
          await Promise.all(attaching);
          const kvs = await Promise.all(writes);
          await attach(); // attached after everything: must receive nothing old
          const last = Math.max(...kvs.map((kv) => kv.modRevision));
          assert.equal(new Set(kvs.map((kv) => kv.modRevision)).size, 500, 'distinct revisions');
          const tail = await s.create('/burst/tail', 'end');
          for (const { from, rec } of watchers) {
            await rec.untilRevision(tail.modRevision);
            const want = [...kvs, tail].filter((kv) => kv.modRevision > from).sort((a, b) => a.modRevision - b.modRevision);
            assert.deepEqual(
              rec.events.map((e) => [e.type, e.kv.key, e.kv.modRevision]),
              want.map((kv) => ['create', kv.key, kv.modRevision]),
              `watcher from revision ${from}`,
            );
            assert.equal(rec.error, undefined);
          }
          assert.ok(watchers.some((w) => w.from < last && w.from > watchers[0].from), 'some watcher attached mid-burst');
        }),
      );

      it(
        'cancel stops delivery',
        withStore(async (s) => {
          const cancelled = new Recorder();
          const other = new Recorder();
          const h = await s.watch('/c/', { fromRevision: 0, onEvents: cancelled.onEvents });
          await s.watch('/c/', { fromRevision: 0, onEvents: other.onEvents });
          const a = await s.create('/c/a', 'a');
          await cancelled.untilRevision(a.modRevision);
          h.cancel();
          h.cancel();
          const b = await s.create('/c/b', 'b');
          await other.untilRevision(b.modRevision);
          assert.deepEqual(cancelled.events.map((e) => e.kv.key), ['/c/a']);
        }),
      );
    });

    describe('compaction', () => {
      it(
        'history below the compacted revision is gone (410), current values survive, deleted keys are gone',
        withStore(async (s) => {
          const a1 = await s.create('/cp/a', 'a1');
          const a2 = await s.update('/cp/a', 'a2');
          await s.create('/cp/b', 'b1');
          await s.delete('/cp/b');
          const c1 = await s.create('/cp/c', 'c1');
          const keep = await s.create('/cp/d', 'd1');
          const c2 = await s.update('/cp/c', 'c2');
          const live = new Recorder();
          await s.watch('/cp/', { fromRevision: a1.modRevision, onEvents: live.onEvents, onError: live.onError });

          const at = keep.modRevision;
          await s.compact(at);
          assert.equal(await s.compactedRevision(), at);
          await s.compact(a2.modRevision); // older than the compacted revision: nothing to do
          assert.equal(await s.compactedRevision(), at);

          const gone: [string, () => Promise<unknown>][] = [
            ['get', () => s.get('/cp/a', a1.modRevision)],
            ['list', () => s.list('/cp/', { revision: at - 1 })],
            ['watch', () => s.watch('/cp/', { fromRevision: at - 1, onEvents: () => undefined })],
          ];
          for (const [what, call] of gone) await assertStoreError(call(), 'Compacted', [], `${what} below the compacted revision`);

          assert.deepEqual((await s.list('/cp/')).items, [a2, c2, keep], 'current values survive');
          assert.deepEqual((await s.list('/cp/', { revision: at })).items, [a2, c1, keep], 'the compacted revision itself is readable');
          assert.equal(await s.get('/cp/b', at), undefined);
          assert.equal(await s.count('/cp/'), 3);

          const fromCompacted = new Recorder();
          await s.watch('/cp/', { fromRevision: at, onEvents: fromCompacted.onEvents });
          await fromCompacted.untilRevision(c2.modRevision);
          assert.deepEqual(fromCompacted.events.map(plain), [{ type: 'update', kv: c2, prevKv: c1 }], 'replay from the compacted revision');

          const b = await s.create('/cp/b', 'b2');
          assert.ok(b.createRevision > at);
          await live.untilRevision(b.modRevision);
          assert.equal(live.error, undefined, 'a live watcher is not affected by compaction');
          assert.deepEqual(live.events.map((e) => e.kv.modRevision).slice(-2), [c2.modRevision, b.modRevision]);

          await assertStoreError(s.compact((await s.currentRevision()) + 10), 'InvalidArgument', []);
        }),
      );

      it(
        'compacting to the current revision keeps every live key and the revision counter',
        withStore(async (s) => {
          for (let i = 0; i < 20; i++) await s.create(`/cc/k${i}`, `v${i}`);
          for (let i = 0; i < 20; i += 2) await s.update(`/cc/k${i}`, `w${i}`);
          for (let i = 0; i < 20; i += 5) await s.delete(`/cc/k${i}`);
          const before = await s.list('/cc/');
          const cur = await s.currentRevision();
          await s.compact(cur);
          assert.equal(await s.currentRevision(), cur);
          assert.deepEqual(await s.list('/cc/'), before);
          const next = await s.create('/cc/new', 'n');
          assert.ok(next.modRevision > cur, 'revisions are never reused');
        }),
      );
    });

    describe('concurrency', () => {
      it(
        '200 concurrent creates of the same key: exactly one succeeds',
        withStore(async (s) => {
          const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => s.create('/race/k', `v${i}`)));
          const won = results.filter((r) => r.status === 'fulfilled');
          assert.equal(won.length, 1);
          for (const r of results) if (r.status === 'rejected') assertIsStoreError(r.reason, 'KeyExists');
          assert.deepEqual(await s.get('/race/k'), (won[0] as PromiseFulfilledResult<KeyValue>).value);
        }),
      );

      it(
        '200 concurrent updates with the same expectedRevision: exactly one succeeds',
        withStore(async (s) => {
          const kv = await s.create('/race/u', 'v0');
          const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => s.update('/race/u', `v${i + 1}`, kv.modRevision)));
          const won = results.filter((r) => r.status === 'fulfilled');
          assert.equal(won.length, 1);
          for (const r of results) if (r.status === 'rejected') assertIsStoreError(r.reason, 'RevisionMismatch');
          assert.deepEqual(await s.get('/race/u'), (won[0] as PromiseFulfilledResult<KeyValue>).value);
        }),
      );

      it(
        '300 concurrent distinct creates all succeed with distinct revisions',
        withStore(async (s) => {
          const kvs = await Promise.all(Array.from({ length: 300 }, (_, i) => s.create(`/many/k${String(i).padStart(3, '0')}`, `v${i}`)));
          assert.equal(new Set(kvs.map((kv) => kv.modRevision)).size, 300);
          for (const kv of kvs) assert.equal(kv.createRevision, kv.modRevision);
          assert.equal(await s.currentRevision(), Math.max(...kvs.map((kv) => kv.modRevision)));
          assert.deepEqual((await s.list('/many/')).items, kvs);
          assert.equal(await s.count('/many/'), 300);
        }),
      );
    });
  });
}

/** Collects watch events and lets a test wait (bounded) for a revision to arrive. */
class Recorder {
  readonly events: StoreEvent[] = [];
  calls = 0;
  error: Error | undefined;
  private waiters: (() => void)[] = [];

  readonly onEvents = (events: StoreEvent[]): void => {
    this.calls++;
    this.events.push(...events);
    for (const w of this.waiters.splice(0)) w();
  };

  readonly onError = (err: Error): void => {
    this.error = err;
    for (const w of this.waiters.splice(0)) w();
  };

  get lastRevision(): number {
    return this.events.length ? this.events[this.events.length - 1].kv.modRevision : 0;
  }

  async untilRevision(rev: number): Promise<void> {
    const deadline = Date.now() + EVENT_TIMEOUT_MS;
    while (this.lastRevision < rev) {
      if (this.error) throw new Error(`watch failed before revision ${rev}: ${this.error.message}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`watch did not reach revision ${rev} within ${EVENT_TIMEOUT_MS} ms (last: ${this.lastRevision})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    assertIncreasing(this.events.map((e) => e.kv.modRevision));
  }
}

function assertIncreasing(revs: number[]): void {
  for (let i = 1; i < revs.length; i++) assert.ok(revs[i] > revs[i - 1], `revisions must strictly increase: ${revs[i - 1]} then ${revs[i]}`);
}

function assertIsStoreError(err: unknown, code: StoreErrorCode, mentions: string[] = [], what = ''): void {
  assert.ok(isStoreError(err), `${what} expected a StoreError, got ${String(err)}`);
  assert.equal(err.code, code, `${what} code (${err.message})`);
  for (const m of mentions) assert.ok(err.message.includes(m), `${what} message ${JSON.stringify(err.message)} should mention ${m}`);
}

async function assertStoreError(p: Promise<unknown>, code: StoreErrorCode, mentions: string[] = [], what = ''): Promise<void> {
  let settled: unknown;
  try {
    settled = await p;
  } catch (err) {
    assertIsStoreError(err, code, mentions, what);
    return;
  }
  assert.fail(`${what} expected ${code}, but it succeeded with ${JSON.stringify(settled)}`);
}

/** An event as plain data (no absent-vs-undefined prevKv difference) for deepEqual. */
function plain(e: StoreEvent): StoreEvent {
  return e.prevKv ? { type: e.type, kv: { ...e.kv }, prevKv: { ...e.prevKv } } : { type: e.type, kv: { ...e.kv } };
}

function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (i * 7919 + 13) % (i + 1); // deterministic, so a failure reproduces
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
