// Prometheus metrics for the whole process, on one prom-client registry that components receive (never a
// global): request durations by verb/resource/code, store operations, open watches, workqueue depth,
// reconcile durations and errors.
import client from 'prom-client';
import type { ControllerMetrics } from '../runtime/controller.js';
import type { QueueMetrics } from '../runtime/workqueue.js';
import type { Store, KeyValue, WriteOp, ListOptions, WatchOptions, WatchHandle, ListResult, CompactionOptions } from '../store/types.js';

export interface Metrics {
  registry: client.Registry;
  requestDuration: client.Histogram<'verb' | 'resource' | 'code'>;
  storeOps: client.Histogram<'op' | 'result'>;
  watches: client.Gauge<'resource'>;
  queueDepth: client.Gauge<'controller'>;
  queueAdds: client.Counter<'controller'>;
  queueRetries: client.Counter<'controller'>;
  reconcileDuration: client.Histogram<'controller' | 'result'>;
  reconcileErrors: client.Counter<'controller'>;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'metalplane_process_' });
  const latency = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    registry,
    requestDuration: new client.Histogram({
      name: 'metalplane_apiserver_request_duration_seconds',
      help: 'API request latency by verb, resource and HTTP code (watches are counted when they end).',
      labelNames: ['verb', 'resource', 'code'],
      buckets: latency,
      registers: [registry],
    }),
    storeOps: new client.Histogram({
      name: 'metalplane_store_operation_duration_seconds',
      help: 'Store operation latency by operation and result.',
      labelNames: ['op', 'result'],
      buckets: latency,
      registers: [registry],
    }),
    watches: new client.Gauge({ name: 'metalplane_apiserver_watches', help: 'Open watch streams by resource.', labelNames: ['resource'], registers: [registry] }),
    queueDepth: new client.Gauge({ name: 'metalplane_workqueue_depth', help: 'Keys waiting in each controller workqueue.', labelNames: ['controller'], registers: [registry] }),
    queueAdds: new client.Counter({ name: 'metalplane_workqueue_adds_total', help: 'Keys added to each workqueue.', labelNames: ['controller'], registers: [registry] }),
    queueRetries: new client.Counter({ name: 'metalplane_workqueue_retries_total', help: 'Keys requeued with backoff after an error.', labelNames: ['controller'], registers: [registry] }),
    reconcileDuration: new client.Histogram({
      name: 'metalplane_reconcile_duration_seconds',
      help: 'Reconcile latency by controller and result (done, requeue, error).',
      labelNames: ['controller', 'result'],
      buckets: latency,
      registers: [registry],
    }),
    reconcileErrors: new client.Counter({ name: 'metalplane_reconcile_errors_total', help: 'Reconciles that returned an error.', labelNames: ['controller'], registers: [registry] }),
  };
}

/**
 * What the in-memory current state holds (every live object's stored JSON), read at each scrape: with the
 * process's heap metrics, how memory grows with the number and size of objects.
 */
export function observeCurrentState(m: Metrics, size: () => { objects: number; textLength: number } | undefined): void {
  const gauge = (name: string, help: string, read: (s: { objects: number; textLength: number }) => number): void => {
    new client.Gauge({
      name,
      help,
      registers: [m.registry],
      collect() {
        const s = size();
        this.set(s ? read(s) : 0);
      },
    });
  };
  gauge('metalplane_current_state_objects', 'Objects in the in-memory current state (every live object, all kinds).', (s) => s.objects);
  gauge(
    'metalplane_current_state_text_bytes',
    'Length of the stored JSON of those objects (what they take in memory, before indexes and decoded copies).',
    (s) => s.textLength,
  );
}

/** The runtime's metrics hooks, fed into the prom-client instruments. */
export function controllerMetrics(m: Metrics): ControllerMetrics & { queue: QueueMetrics } {
  return {
    observeReconcile(controller, outcome, seconds) {
      m.reconcileDuration.observe({ controller, result: outcome }, seconds);
      if (outcome === 'error' || outcome === 'terminal_error') m.reconcileErrors.inc({ controller });
    },
    queue: {
      depth: (queue, depth) => m.queueDepth.set({ controller: queue }, depth),
      add: (queue) => m.queueAdds.inc({ controller: queue }),
      retry: (queue) => m.queueRetries.inc({ controller: queue }),
    },
  };
}

/** Wraps a Store so every operation is timed into `storeOps`. */
export function instrumentStore(store: Store, m: Metrics): Store {
  // Label sets made once, and performance.now(): prom-client's startTimer merged label objects and read hrtime
  // into arrays on every operation (a create made about half a KB less garbage without it).
  const labelsOf = (op: string) => ({ ok: { op, result: 'ok' }, error: { op, result: 'error' } });
  const L = { get: labelsOf('get'), list: labelsOf('list'), count: labelsOf('count'), create: labelsOf('create'), update: labelsOf('update'), delete: labelsOf('delete'), commit: labelsOf('commit'), compact: labelsOf('compact') };
  const time = async <T>(labels: ReturnType<typeof labelsOf>, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      const r = await fn();
      m.storeOps.observe(labels.ok, (performance.now() - t0) / 1000);
      return r;
    } catch (e) {
      m.storeOps.observe(labels.error, (performance.now() - t0) / 1000);
      throw e;
    }
  };
  return {
    currentRevision: () => store.currentRevision(),
    compactedRevision: () => store.compactedRevision(),
    get: (key: string, revision?: number): Promise<KeyValue | undefined> => time(L.get, () => store.get(key, revision)),
    list: (prefix: string, opts?: ListOptions): Promise<ListResult> => time(L.list, () => store.list(prefix, opts)),
    count: (prefix: string) => time(L.count, () => store.count(prefix)),
    create: (key: string, value: string) => time(L.create, () => store.create(key, value)),
    update: (key: string, value: string, rev?: number) => time(L.update, () => store.update(key, value, rev)),
    delete: (key: string, rev?: number) => time(L.delete, () => store.delete(key, rev)),
    commit: (ops: WriteOp[]) => time(L.commit, () => store.commit(ops)),
    watch: (prefix: string, opts: WatchOptions): Promise<WatchHandle> => store.watch(prefix, opts),
    compact: (revision: number) => time(L.compact, () => store.compact(revision)),
    startCompaction: (opts?: CompactionOptions) => store.startCompaction(opts),
    close: () => store.close(),
  };
}
