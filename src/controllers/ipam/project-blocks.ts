// Releasing a deleted project's address blocks. A project's first device in a metro claims blocks for it
// (its private IPv4 /25, its IPv6 /56: IPAddress claims with use `block`, cluster-scoped, so the namespace
// controller does not see them). Once the project's namespace is gone — which is only after every device in
// it was deleted and released its assignments — nothing can be placed in those blocks any more, and this
// controller deletes them, so that deleting a project gives back everything it held.
import type { IPAddressSpec } from '../../kinds/ip-address.js';
import { Controller, done, type Reconciler, type Result } from '../../runtime/controller.js';
import type { Informer } from '../../runtime/informer.js';
import { informersOf, type ProvisioningDeps } from '../provisioning-context.js';

const FieldManager = 'metalplane-ipam';
const ProjectIndex = 'project';

export function createProjectBlocksController(deps: ProvisioningDeps): Controller {
  const inf = informersOf(deps);
  const ips = inf.ipAddress;
  if (!ips.cache.hasIndex(ProjectIndex)) ips.addIndex(ProjectIndex, (o) => { const p = (o.spec as IPAddressSpec).project; return p ? [p] : []; });
  return new Controller({
    name: 'ip-project-blocks',
    reconciler: new ProjectBlocksReconciler(deps, ips, inf.namespace),
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [
      { informer: inf.namespace, map: (o, event) => (event === 'delete' ? [o.metadata.name] : []) },
      // Also on start (every block is seen once) and whenever a project's claim goes.
      { informer: ips, map: (o, event) => { const s = o.spec as IPAddressSpec; return s.project && (event === 'delete' ? s.use === 'assignment' : s.use === 'block') ? [s.project] : []; } },
    ],
  });
}

export class ProjectBlocksReconciler implements Reconciler {
  constructor(
    private readonly deps: ProvisioningDeps,
    private readonly ips: Informer,
    private readonly namespaces: Informer,
  ) {}

  async reconcile(project: string): Promise<Result> {
    if (this.namespaces.get(undefined, project)) return done;
    // Read the store, not the cache: the namespace may have been made again a moment ago.
    if (await this.deps.client.get(this.deps.kinds.namespace, undefined, project)) return done;
    const held = this.ips.cache.byIndex(ProjectIndex, project);
    // An assignment still there belongs to a device being released: its deletion brings this key back.
    if (held.some((a) => (a.spec as IPAddressSpec).use === 'assignment')) return done;
    const blocks = held.filter((a) => (a.spec as IPAddressSpec).use === 'block');
    if (blocks.length === 0) return done;
    await this.deps.client.transact(
      blocks.map((b) => ({ op: 'delete', kind: this.deps.kinds.ipAddress, name: b.metadata.name, resourceVersion: b.metadata.resourceVersion })),
      { fieldManager: FieldManager },
    );
    return done;
  }
}
