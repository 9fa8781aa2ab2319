// The core controllers every metalplane runs: namespace lifecycle and ownerReferences garbage collection,
// sharing one set of informers. The caller decides when they run (e.g. only while holding the leader
// lease: start in onStartedLeading, stop in onStoppedLeading).
import type { Clock } from '../lib/clock.js';
import type { KindDeclaration } from '../kinds/types.js';
import type { ObjectClient } from '../runtime/client.js';
import type { Controller, ControllerMetrics } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { InformerFactory } from '../runtime/informer.js';
import { silentLogger, type Logger } from '../runtime/logger.js';
import type { QueueMetrics } from '../runtime/workqueue.js';
import { createGarbageCollector } from './garbage-collector.js';
import { createNamespaceController } from './namespace.js';

export { createNamespaceController, NamespaceReconciler, NamespaceFinalizer, NamespaceConditionType } from './namespace.js';
export type { NamespaceControllerOptions } from './namespace.js';
export {
  createGarbageCollector,
  GarbageCollector,
  ForegroundDeletionFinalizer,
  OrphanFinalizer,
  OwnerUidIndex,
} from './garbage-collector.js';
export type { GarbageCollectorOptions } from './garbage-collector.js';

export interface CoreControllerDeps {
  client: ObjectClient;
  kinds: KindDeclaration[];
  clock?: Clock;
  logger?: Logger;
  recorder?: EventRecorder;
  metrics?: ControllerMetrics;
  queueMetrics?: QueueMetrics;
  /** Re-deliver every cached object to the controllers this often (default 10 min; 0 = never). */
  resyncIntervalMs?: number;
}

export interface CoreControllers {
  readonly informers: InformerFactory;
  readonly controllers: Controller[];
  /** Stops the controllers (waiting for reconciles in flight), then the informers. */
  stop(): Promise<void>;
}

export function startCoreControllers(deps: CoreControllerDeps): CoreControllers {
  const logger = deps.logger ?? silentLogger;
  const informers = new InformerFactory({
    client: deps.client,
    clock: deps.clock,
    logger,
    resyncIntervalMs: deps.resyncIntervalMs ?? 10 * 60_000,
  });
  const common = { client: deps.client, kinds: deps.kinds, informers, clock: deps.clock, logger, metrics: deps.metrics, queueMetrics: deps.queueMetrics };
  const controllers = [createNamespaceController(common), createGarbageCollector({ ...common, recorder: deps.recorder })];
  informers.start();
  for (const c of controllers) {
    c.start().catch((err: unknown) => logger.error({ err, controller: c.name }, 'controller failed to start'));
  }
  let stopping: Promise<void> | undefined;
  return {
    informers,
    controllers,
    stop() {
      stopping ??= (async () => {
        await Promise.all(controllers.map((c) => c.stop()));
        informers.stop();
      })();
      return stopping;
    },
  };
}
