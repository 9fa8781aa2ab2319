// The namespace controller: empties a namespace that is being deleted and then lets it go.
//
// As in Kubernetes, deleting a Namespace only marks it (deletionTimestamp, phase Terminating) because
// spec.finalizers holds `kubernetes`. This controller deletes every object of every namespaced kind in
// it, and once none remain removes `kubernetes` from spec.finalizers; the registry completes the deletion
// when spec.finalizers and metadata.finalizers are both empty. Objects held by finalizers keep it waiting;
// the wait is reported in kube's namespace conditions (NamespaceContentRemaining,
// NamespaceFinalizersRemaining, NamespaceDeletionContentFailure), so `kubectl describe ns` says why.
import { systemClock, type Clock } from '../lib/clock.js';
import { isConflict, isNotFound } from '../lib/errors.js';
import type { Condition, KindDeclaration, StoredObject } from '../kinds/types.js';
import type { ObjectClient } from '../runtime/client.js';
import { setConditions, type ConditionInput } from '../runtime/conditions.js';
import {
  Controller,
  done,
  requeueAfter,
  type ControllerMetrics,
  type Reconciler,
  type Result,
  type Watch,
} from '../runtime/controller.js';
import type { Informer, InformerFactory } from '../runtime/informer.js';
import { childLogger, silentLogger, type Logger } from '../runtime/logger.js';
import type { QueueMetrics } from '../runtime/workqueue.js';

/** The finalizer this controller owns in Namespace spec.finalizers. */
export const NamespaceFinalizer = 'kubernetes';

export const NamespaceConditionType = {
  ContentFailure: 'NamespaceDeletionContentFailure',
  ContentRemaining: 'NamespaceContentRemaining',
  FinalizersRemaining: 'NamespaceFinalizersRemaining',
} as const;

export interface NamespaceControllerOptions {
  client: ObjectClient;
  /** Every declared kind; the namespaced ones are emptied out of terminating namespaces. */
  kinds: KindDeclaration[];
  informers: InformerFactory;
  clock?: Clock;
  logger?: Logger;
  metrics?: ControllerMetrics;
  queueMetrics?: QueueMetrics;
  workers?: number;
  /**
   * Also watch the namespaced kinds (through the shared informers) so a terminating namespace is looked at
   * again as soon as content in it goes away (default true). Without it, only the periodic requeue does.
   */
  watchContent?: boolean;
  /** How soon to look again while content remains (default 5 s). */
  recheckMs?: number;
}

interface NamespaceStatus {
  phase?: string;
  conditions?: Condition[];
}

interface ContentReport {
  /** resource (e.g. `devices.metalplane.dev`) → instances still present */
  remaining: Map<string, number>;
  /** finalizer → instances carrying it */
  finalizers: Map<string, number>;
  failures: string[];
}

export function createNamespaceController(opts: NamespaceControllerOptions): Controller {
  const nsKind = opts.kinds.find((k) => k.group === '' && k.kind === 'Namespace');
  if (!nsKind) throw new Error('namespace controller: the kinds include no core v1 Namespace');
  const namespaces = opts.informers.informerFor(nsKind);
  const reconciler = new NamespaceReconciler(opts, nsKind, namespaces);
  const watches: Watch[] = [{ informer: namespaces }];
  if (opts.watchContent !== false) {
    for (const kind of reconciler.contentKinds) {
      // Events come and go constantly and never hold a namespace: not worth a cache of every Event.
      if (kind.group === '' && kind.kind === 'Event') continue;
      if (!supports(kind, 'watch')) continue;
      watches.push({
        // Only to hear of changes: metadata is enough (deletion lists live).
        informer: opts.informers.metadataInformerFor(kind),
        map: (obj, event) => {
          const ns = obj.metadata.namespace;
          if (!ns || event === 'add') return [];
          return namespaces.get(undefined, ns)?.metadata.deletionTimestamp ? [ns] : [];
        },
      });
    }
  }
  return new Controller({
    name: 'namespace',
    reconciler,
    watches,
    workers: opts.workers ?? 2,
    clock: opts.clock,
    logger: opts.logger,
    metrics: opts.metrics,
    queueMetrics: opts.queueMetrics,
  });
}

export class NamespaceReconciler implements Reconciler {
  readonly contentKinds: KindDeclaration[];
  private readonly client: ObjectClient;
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(
    private readonly opts: NamespaceControllerOptions,
    private readonly nsKind: KindDeclaration,
    private readonly namespaces: Informer,
  ) {
    this.client = opts.client;
    this.clock = opts.clock ?? systemClock;
    this.log = childLogger(opts.logger ?? silentLogger, { controller: 'namespace' });
    this.contentKinds = opts.kinds.filter((k) => k.scope === 'Namespaced' && supports(k, 'list') && supports(k, 'delete'));
  }

  async reconcile(name: string): Promise<Result> {
    const ns = this.namespaces.get(undefined, name);
    if (!ns || !ns.metadata.deletionTimestamp) return done;
    const specFinalizers = ((ns.spec ?? {}) as { finalizers?: string[] }).finalizers ?? [];
    if (!specFinalizers.includes(NamespaceFinalizer)) return done;

    // Live lists, not caches: the namespace may go only when the store itself says it is empty.
    const report = await this.deleteContent(name);
    const total = [...report.remaining.values()].reduce((a, b) => a + b, 0);

    if (total === 0 && report.failures.length === 0) {
      const next = structuredClone(ns);
      (next.spec as { finalizers: string[] }).finalizers = specFinalizers.filter((f) => f !== NamespaceFinalizer);
      try {
        // Only the finalize subresource may change spec.finalizers (as in kube).
        await this.client.update(this.nsKind, next, { subresource: 'finalize' });
      } catch (err) {
        if (isNotFound(err)) return done;
        throw err;
      }
      this.log.info({ namespace: name }, 'namespace emptied; finalizer removed');
      return done;
    }

    await this.writeStatus(ns, report);
    if (report.failures.length > 0) {
      // An error result: backoff, and the failure is logged.
      return { error: new Error(`namespace ${name}: content deletion failed: ${report.failures.join('; ')}`) };
    }
    return requeueAfter(this.opts.recheckMs ?? 5_000);
  }

  private async deleteContent(namespace: string): Promise<ContentReport> {
    const report: ContentReport = { remaining: new Map(), finalizers: new Map(), failures: [] };
    for (const kind of this.contentKinds) {
      const resource = kind.group ? `${kind.plural}.${kind.group}` : kind.plural;
      let items: StoredObject[];
      try {
        items = await this.listAll(kind, namespace);
      } catch (err) {
        report.failures.push(`listing ${resource}: ${(err as Error).message}`);
        continue;
      }
      for (const item of items) {
        let obj: StoredObject | undefined = item;
        if (!item.metadata.deletionTimestamp) {
          try {
            obj = await this.client.delete(kind, namespace, item.metadata.name, {
              propagationPolicy: 'Background',
              preconditions: { uid: item.metadata.uid },
            });
            if (!isStillThere(obj)) obj = undefined;
          } catch (err) {
            if (isNotFound(err)) obj = undefined;
            else if (isConflict(err)) obj = item; // replaced meanwhile: next pass
            else {
              report.failures.push(`deleting ${resource} "${item.metadata.name}": ${(err as Error).message}`);
              obj = item;
            }
          }
        }
        if (!obj) continue;
        report.remaining.set(resource, (report.remaining.get(resource) ?? 0) + 1);
        for (const f of obj.metadata.finalizers ?? []) report.finalizers.set(f, (report.finalizers.get(f) ?? 0) + 1);
      }
    }
    return report;
  }

  private async listAll(kind: KindDeclaration, namespace: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    let cont: string | undefined;
    do {
      const page = await this.client.list(kind, { namespace, limit: 500, continue: cont });
      out.push(...page.items);
      cont = page.continue;
    } while (cont);
    return out;
  }

  private async writeStatus(ns: StoredObject, r: ContentReport): Promise<void> {
    const describe = (m: Map<string, number>, fmt: (k: string, n: number) => string): string =>
      [...m.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, n]) => fmt(k, n))
        .join(', ');
    const inputs: ConditionInput[] = [
      r.failures.length
        ? { type: NamespaceConditionType.ContentFailure, status: 'True', reason: 'ContentDeletionFailed', message: `Failed to delete all resource types, ${r.failures.length} remaining: ${r.failures.join('; ')}` }
        : { type: NamespaceConditionType.ContentFailure, status: 'False', reason: 'ContentDeleted', message: 'All content successfully deleted, may be waiting on finalization' },
      r.remaining.size
        ? { type: NamespaceConditionType.ContentRemaining, status: 'True', reason: 'SomeResourcesRemain', message: `Some resources are remaining: ${describe(r.remaining, (k, n) => `${k} has ${n} resource instances`)}` }
        : { type: NamespaceConditionType.ContentRemaining, status: 'False', reason: 'ContentRemoved', message: 'All content successfully removed' },
      r.finalizers.size
        ? { type: NamespaceConditionType.FinalizersRemaining, status: 'True', reason: 'SomeFinalizersRemain', message: `Some content in the namespace has finalizers remaining: ${describe(r.finalizers, (k, n) => `${k} in ${n} resource instances`)}` }
        : { type: NamespaceConditionType.FinalizersRemaining, status: 'False', reason: 'ContentHasNoFinalizers', message: 'All content-preserving finalizers finished' },
    ];
    const status = (ns.status ?? {}) as NamespaceStatus;
    const { conditions, changed } = setConditions(status.conditions, inputs, this.clock.now());
    if (!changed && status.phase === 'Terminating') return;
    const next = structuredClone(ns);
    next.status = { ...status, phase: 'Terminating', conditions };
    if (this.nsKind.statusSubresource) await this.client.updateStatus(this.nsKind, next);
    else await this.client.update(this.nsKind, next);
  }
}

/** The object as delete() left it is still stored: finalizers hold it. */
function isStillThere(obj: StoredObject): boolean {
  return Boolean(obj.metadata.deletionTimestamp) && (obj.metadata.finalizers?.length ?? 0) > 0;
}

function supports(kind: KindDeclaration, verb: string): boolean {
  return !kind.verbs || kind.verbs.includes(verb);
}
