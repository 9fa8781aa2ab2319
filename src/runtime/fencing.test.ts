// Fencing, with two leader candidates on one store: in-memory SQLite shared by two registries, and two
// PostgresStores (two replicas, each with its own connections and feed) on one throwaway PostgreSQL. Each replica
// has its own fake clock, so one can be paused — its clock frozen (no renewals) and its reconcile stopped between
// reading an object and writing it, as a GC pause or SIGSTOP would — while the other's lease wait runs out. The
// paused leader wakes believing it leads; its write must be refused by the store, and no object may be written by
// both. The write it makes is to an object the new leader has not touched yet, so only the fence can refuse it.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { Registry } from '../apiserver/registry.js';
import { KindRegistry } from '../kinds/index.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import { FakeClock } from '../lib/clock.js';
import { isConflict } from '../lib/errors.js';
import { openPostgresStore } from '../store/postgres/postgres-store.js';
import { startTestPostgres } from '../store/postgres/testing.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { harnessKinds, testKinds } from '../testing/registry-harness.js';
import { eventually, settle } from '../testing/wait.js';
import type { DeleteOptions, ListQuery, ObjectClient, ObjectList, ObjectWatch, ObjectWatchEvent, ObjectWatchQuery, TxWrite, WriteOptions } from './client.js';
import { isFenced } from './fencing.js';
import { LeaderElector } from './leader.js';

const pg = await startTestPostgres();
const NS = 'default';
const widget = testKinds.Widget;

/** Forwards to the registry; status writes can be held after the fenced client handed them their fence. */
class Gated implements ObjectClient {
  statusWrites = 0;
  private gate: Promise<void> | undefined;
  constructor(private readonly inner: ObjectClient) {}
  hold(): () => void {
    let open!: () => void;
    this.gate = new Promise((r) => (open = r));
    return () => {
      this.gate = undefined;
      open();
    };
  }
  kind(group: string, k: string): KindDeclaration {
    return this.inner.kind(group, k);
  }
  get(kind: KindDeclaration, ns: string | undefined, name: string): Promise<StoredObject | undefined> {
    return this.inner.get(kind, ns, name);
  }
  list(kind: KindDeclaration, q?: ListQuery): Promise<ObjectList> {
    return this.inner.list(kind, q);
  }
  watch(kind: KindDeclaration, q: ObjectWatchQuery, on: (e: ObjectWatchEvent) => void): Promise<ObjectWatch> {
    return this.inner.watch(kind, q, on);
  }
  create(kind: KindDeclaration, obj: KubeObject, o?: WriteOptions): Promise<StoredObject> {
    return this.inner.create(kind, obj, o);
  }
  update(kind: KindDeclaration, obj: KubeObject, o?: WriteOptions): Promise<StoredObject> {
    return this.inner.update(kind, obj, o);
  }
  async updateStatus(kind: KindDeclaration, obj: KubeObject, o?: WriteOptions): Promise<StoredObject> {
    this.statusWrites++;
    await this.gate;
    return this.inner.updateStatus(kind, obj, o);
  }
  mergePatch(kind: KindDeclaration, ns: string | undefined, name: string, patch: unknown, o?: WriteOptions): Promise<StoredObject> {
    return this.inner.mergePatch(kind, ns, name, patch, o);
  }
  delete(kind: KindDeclaration, ns: string | undefined, name: string, o?: DeleteOptions): Promise<StoredObject> {
    return this.inner.delete(kind, ns, name, o);
  }
  transact(writes: TxWrite[], o?: WriteOptions): Promise<Array<StoredObject | undefined>> {
    return this.inner.transact(writes, o);
  }
}

interface Replica {
  name: string;
  clock: FakeClock;
  registry: Registry;
  gated: Gated;
  elector: LeaderElector;
  /** The controllers' client of the current term (set in onStartedLeading). */
  client?: ObjectClient;
}

/** `ioMs`: real time each waiting round gives the store's I/O when it is another process (see `eventually`). */
type Backend = { name: string; skip?: string; ioMs?: number; open: () => Promise<[Store, Store]> };

const backends: Backend[] = [
  {
    name: 'SQLite, one store shared by two registries',
    open: async () => {
      const s = await openSqliteStore(':memory:');
      return [s, s];
    },
  },
  {
    name: 'PostgreSQL, two stores on one database',
    skip: typeof pg === 'string' ? pg : undefined,
    ioMs: 1,
    open: async () => {
      if (typeof pg === 'string') throw new Error(pg);
      const url = await pg.freshUrl();
      const a = await openPostgresStore(url);
      return [a, await openPostgresStore(url)];
    },
  },
];

async function replicas(t: TestContext, backend: Backend) {
  const stores = await backend.open();
  const log: string[] = [];
  const make = async (name: string, store: Store): Promise<Replica> => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const registry = new Registry({ store, kinds: new KindRegistry(harnessKinds), clock });
    await registry.start();
    const gated = new Gated(registry);
    const r: Replica = { name, clock, registry, gated } as Replica;
    r.elector = new LeaderElector({
      client: registry,
      identity: name,
      clock,
      leaseName: 'controllers',
      onStartedLeading: () => {
        r.client = r.elector.fencedClient(gated);
        log.push(`${name} started`);
      },
      onStoppedLeading: () => void log.push(`${name} stopped`),
    });
    return r;
  };
  const a = await make('a', stores[0]);
  const b = await make('b', stores[1]);
  t.after(async () => {
    await Promise.all([a.elector.stop(), b.elector.stop()]);
    a.registry.close();
    b.registry.close();
    await Promise.all([...new Set(stores)].map((s) => s.close()));
  });
  await a.registry.create(a.registry.kind('', 'Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  for (const name of ['w1', 'w2']) {
    await a.registry.create(widget, { apiVersion: 'test.metalplane.dev/v1', kind: 'Widget', metadata: { name, namespace: NS }, spec: {} });
  }
  /** Moves one replica's clock in steps, letting its elector's store calls finish (a PostgreSQL round trip takes real time). */
  const run = async (r: Replica, ms: number, step = 500) => {
    for (let at = 0; at < ms; at += step) {
      r.clock.advance(step);
      await settle(4);
      if (backend.ioMs) await new Promise<void>((resolve) => setTimeout(resolve, backend.ioMs));
    }
  };
  /** Waits for `cond`, moving the replica's clock a little each round so that its elector's timers fire. */
  const until = (r: Replica, cond: () => boolean, message: string) => eventually(cond, { clock: r.clock, stepMs: 50, rounds: 4000, message, yieldMs: backend.ioMs });
  return { a, b, log, run, until };
}

/** A status write as a controller makes it, remembering who wrote which version. */
async function stamp(client: ObjectClient, obj: StoredObject, by: string): Promise<StoredObject> {
  return client.updateStatus(widget, { ...obj, status: { reconciledBy: by } });
}

for (const backend of backends) {
  describe(`fencing: ${backend.name}`, { skip: backend.skip }, () => {
    it('a leader paused past its lease wakes up and its write is refused; no object is written by both', async (t) => {
      const { a, b, log, run, until } = await replicas(t, backend);
      a.elector.start();
      await until(a, () => a.elector.isLeader(), 'a leads');
      b.elector.start();
      await run(b, 3_000);
      assert.equal(b.elector.isLeader(), false);

      // a reconciles w2 as the leader: a fenced write goes through.
      const w2 = await stamp(a.client!, (await a.registry.get(widget, NS, 'w2'))!, 'a');
      const writes: Array<{ by: string; rv: number }> = [{ by: 'a', rv: Number(w2.metadata.resourceVersion) }];

      // a reads w1 ... and is paused (its clock stops: no renewals) before it writes.
      const w1 = (await a.registry.get(widget, NS, 'w1'))!;
      await run(b, 20_000);
      await until(b, () => b.elector.isLeader(), 'b takes the lease once it expired on its clock');
      const takeover = Number(b.elector.fencingToken()!.fence.resourceVersion);
      // b reconciles w2 (not w1 yet).
      await eventually(async () => (await b.registry.get(widget, NS, 'w2'))?.metadata.resourceVersion === w2.metadata.resourceVersion, { rounds: 4000, message: "b's registry has a's write" });
      const w2b = await stamp(b.client!, (await b.registry.get(widget, NS, 'w2'))!, 'b');
      writes.push({ by: 'b', rv: Number(w2b.metadata.resourceVersion) });

      // a wakes up: it still believes it leads, and writes what it decided before the pause.
      assert.equal(a.elector.isLeader(), true, 'a has not noticed yet (its clock did not move)');
      const err = await stamp(a.client!, w1, 'a').then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isFenced(err), `the store refused a's write: ${String(err)}`);
      assert.ok(isConflict(err), 'a conflict-like error (409)');
      assert.match((err as Error).message, /Lease metalplane-system\/controllers is no longer at resourceVersion/);
      assert.equal(((await b.registry.get(widget, NS, 'w1'))!.status as { reconciledBy?: string } | undefined)?.reconciledBy, undefined, 'w1 is untouched');
      assert.equal(a.elector.isLeader(), false, 'a stepped down when its write was fenced off');
      assert.deepEqual(log, ['a started', 'b started', 'a stopped']);

      // Its later writes are refused without asking the store.
      const writesOfA = a.gated.statusWrites;
      await assert.rejects(stamp(a.client!, w1, 'a'), (e: unknown) => isFenced(e));
      assert.equal(a.gated.statusWrites, writesOfA, 'refused in the client');

      // The new leader reconciles w1; a, back on its clock, does not take the lease back.
      const w1b = await stamp(b.client!, (await b.registry.get(widget, NS, 'w1'))!, 'b');
      writes.push({ by: 'b', rv: Number(w1b.metadata.resourceVersion) });
      await run(a, 6_000);
      assert.equal(a.elector.isLeader(), false);
      assert.equal(b.elector.isLeader(), true);
      for (const w of writes) {
        if (w.by === 'a') assert.ok(w.rv < takeover, `a's write at ${w.rv} landed before b's takeover at ${takeover}`);
        else assert.ok(w.rv > takeover);
      }
    });

    it("a write that took its fence just before the leader's own renewal is retried, not taken for a lost lease", async (t) => {
      const { a, log, run, until } = await replicas(t, backend);
      a.elector.start();
      await until(a, () => a.elector.isLeader(), 'a leads');
      const fenceBefore = a.elector.fencingToken()!.fence.resourceVersion;
      const w1 = (await a.registry.get(widget, NS, 'w1'))!;
      // The write is handed its fence, then held in flight while a renews (the lease's resourceVersion moves).
      const release = a.gated.hold();
      const writing = stamp(a.client!, w1, 'a');
      await settle(2);
      await run(a, 2_500);
      await until(a, () => a.elector.fencingToken()?.fence.resourceVersion !== fenceBefore, 'a renewed');
      release();
      const written = await writing;
      assert.equal((written.status as { reconciledBy: string }).reconciledBy, 'a');
      assert.equal(a.gated.statusWrites, 2, 'refused once with the old fence, then written with the renewed one');
      assert.equal(a.elector.isLeader(), true);
      assert.deepEqual(log, ['a started']);
    });
  });
}
