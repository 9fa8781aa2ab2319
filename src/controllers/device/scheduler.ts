// Placing a queued device: decisions one at a time under the lock, against the informers' caches plus what
// earlier decisions assumed (kube-scheduler's "assume": committed, maybe not in the caches yet); the commit —
// machine, IP claims, provisioning workflow and device status in ONE transaction — runs outside the lock, so
// concurrent placements share one group commit. A failed commit forgets its assumptions and decides again;
// the loser of a race gets a conflict, never a machine or an address that was given to someone else.
import type { DeviceStatus } from '../../kinds/device.js';
import type { HardwareStatus } from '../../kinds/hardware.js';
import type { IPPoolSpec } from '../../kinds/ip-pool.js';
import type { StoredObject } from '../../kinds/types.js';
import type { TxWrite } from '../../runtime/client.js';
import { getCondition } from '../../runtime/conditions.js';
import { done, requeueAfter, type Result } from '../../runtime/controller.js';
import type { ClaimIndex, Pool } from '../ipam/allocate.js';
import { claimIndexOf } from '../ipam/claims.js';
import { workflowName } from '../workflow/templates.js';
import { FieldManager, statusOf, type DeviceContext } from './context.js';
import { mustTransition, stateOf, transition } from './lifecycle.js';
import { decidePlacement, forgetSeenAssumptions, type PlacementSnapshot } from './schedule.js';
import { workflowObject } from './workflows.js';
import { cloudConfigGate, withCloudConfig } from './cloud-config.js';

/** How often a device that cannot be placed looks again (capacity appearing re-enqueues it sooner). */
const UnschedulableRecheckMs = 30_000;

type Decided = { result: Result } | { device: StoredObject; hardware: string; addressKeys: string[]; writes: TxWrite[]; message: string };

export class Scheduler {
  private readonly assumedHardware = new Map<string, number>();
  private readonly assumedAddresses = new Set<string>();
  /** The revision of the commit that claimed each assumed address (absent while the commit is in flight). */
  private readonly committedAt = new Map<string, number>();

  private readonly claims: ClaimIndex;

  constructor(private readonly ctx: DeviceContext) {
    this.claims = claimIndexOf(ctx.inf.ipAddress);
  }

  /** Keys of devices waiting for a machine. */
  queuedKeys(): string[] {
    const out: string[] = [];
    for (const d of this.ctx.inf.device.list()) {
      if (!statusOf(d).hardware && !d.metadata.deletionTimestamp) out.push(`${d.metadata.namespace}/${d.metadata.name}`);
    }
    return out;
  }

  async schedule(namespace: string, name: string): Promise<Result> {
    const d = await this.ctx.lock.run(() => this.decide(namespace, name));
    if ('result' in d) return d.result;
    let written: Array<StoredObject | undefined>;
    try {
      written = await this.ctx.deps.client.transact(d.writes, { fieldManager: FieldManager });
    } catch (e) {
      // Someone else changed the machine, took an address, or edited the device: forget, and (on a
      // conflict, through the error's backoff) decide again.
      this.assumedHardware.delete(d.hardware);
      for (const k of d.addressKeys) this.assumedAddresses.delete(k);
      throw e;
    }
    const revision = Math.max(0, ...written.map((o) => Number(o?.metadata.resourceVersion ?? 0)));
    for (const k of d.addressKeys) if (this.assumedAddresses.has(k)) this.committedAt.set(k, revision);
    this.ctx.event(d.device, 'Normal', 'Scheduled', d.message);
    return done;
  }

  private snapshot(dev: StoredObject): PlacementSnapshot {
    const { inf, deps } = this.ctx;
    const pools: Pool[] = inf.ipPool.list().map((p) => ({ name: p.metadata.name, ...(p.spec as IPPoolSpec) }));
    return {
      device: { namespace: dev.metadata.namespace!, name: dev.metadata.name, uid: dev.metadata.uid, spec: dev.spec as PlacementSnapshot['device']['spec'], status: statusOf(dev) },
      plans: inf.plan.list().map((p) => p.metadata.name),
      operatingSystems: inf.operatingSystem.list().map((o) => {
        const s = o.spec as { slug: string; provisionableOn?: string[] };
        return { name: o.metadata.name, slug: s.slug, provisionableOn: s.provisionableOn };
      }),
      facilities: new Map(inf.facility.list().map((f) => [f.metadata.name, (f.spec as { metro: string }).metro])),
      hardware: inf.hardware.list(),
      warm: { has: (name) => deps.agents.isAlive(name, (inf.hardware.get(undefined, name)?.status as HardwareStatus | undefined)?.agent?.bootId) },
      assumedHardware: this.assumedHardware,
      pools,
      // Every claim of the server, indexed as the IPAddress informer's cache changes.
      claimsIn: () => this.claims,
      assumedAddresses: this.assumedAddresses,
    };
  }

  private async decide(namespace: string, name: string): Promise<Decided> {
    const { ctx } = this;
    // Read again inside the lock: the previous placement may have been this very device.
    const dev = await ctx.deps.client.get(ctx.kinds.device, namespace, name);
    if (!dev || dev.metadata.deletionTimestamp || statusOf(dev).hardware) return { result: done };
    forgetSeenAssumptions(this.assumedHardware, this.assumedAddresses, {
      hardwareVersion: (n) => {
        const h = ctx.inf.hardware.get(undefined, n);
        return h ? Number(h.metadata.resourceVersion) : undefined;
      },
      hasAddress: (k) => ctx.inf.ipAddress.get(undefined, k) !== undefined,
      caughtUpWith: (k) => {
        const at = this.committedAt.get(k);
        return at !== undefined && Number(ctx.inf.ipAddress.lastSyncResourceVersion()) >= at;
      },
    });
    for (const k of this.committedAt.keys()) if (!this.assumedAddresses.has(k)) this.committedAt.delete(k);
    const decision = decidePlacement(this.snapshot(dev));
    if (!decision.placed) return { result: await this.unschedulable(dev, decision.reason, decision.message) };

    const st = statusOf(dev);
    const hw = decision.hardware;
    const wfName = workflowName(dev.metadata.name, 'provision', dev.metadata.resourceVersion);
    // A device waiting for its CloudConfig gets its machine and addresses now, its workflow later (follow.ts).
    const gate = cloudConfigGate(ctx, dev);
    const starts = gate === undefined || gate.ready;
    let devStatus: DeviceStatus = {
      ...st,
      state: mustTransition(stateOf(st), 'Scheduled'),
      hardware: hw.metadata.name,
      facility: decision.facility,
      metro: decision.metro,
      ipAddresses: decision.ips,
      provisioningPercentage: 0,
      ...(starts ? { workflow: wfName } : {}),
    };
    if (gate) devStatus = withCloudConfig(devStatus, gate);
    delete devStatus.workflowNamespace;
    const hwStatus: HardwareStatus = {
      ...((hw.status ?? {}) as HardwareStatus),
      state: 'provisioning',
      claim: { namespace, name: dev.metadata.name, uid: dev.metadata.uid },
      ...(starts ? { workflow: { namespace, name: wfName } } : {}),
    };
    const addressKeys = decision.claims.map((c) => c.metadata.name!);
    this.assumedHardware.set(hw.metadata.name, Number(hw.metadata.resourceVersion));
    for (const k of addressKeys) this.assumedAddresses.add(k);
    const rack = (hw.spec as { rack?: string }).rack ?? '-';
    return {
      device: dev,
      hardware: hw.metadata.name,
      addressKeys,
      writes: [
        { op: 'update', kind: ctx.kinds.hardware, object: { ...hw, status: hwStatus }, subresource: 'status' },
        ...decision.claims.map((object): TxWrite => ({ op: 'create', kind: ctx.kinds.ipAddress, object })),
        ...(starts ? [{ op: 'create', kind: ctx.kinds.workflow, object: workflowObject(ctx, dev, hw, wfName, 'provision') } satisfies TxWrite] : []),
        { op: 'update', kind: ctx.kinds.device, object: { ...dev, status: ctx.withConditions(dev, devStatus) }, subresource: 'status' },
      ],
      message: `Bound to hardware ${hw.metadata.name} (${decision.facility}, rack ${rack}); addresses ${decision.ips.map((i) => i.address).join(', ')}`,
    };
  }

  private async unschedulable(dev: StoredObject, reason: string, message: string): Promise<Result> {
    const { ctx } = this;
    const st = statusOf(dev);
    const prev = getCondition(st.conditions, 'Scheduled');
    const state = transition(stateOf(st), 'Unschedulable') ?? 'queued';
    const { status, changed } = ctx.deriveStatus(dev, { ...st, state }, { reason, message });
    if (changed || st.state !== state) {
      await ctx.deps.client.updateStatus(ctx.kinds.device, { ...dev, status }, { fieldManager: FieldManager });
      if (prev?.reason !== reason) ctx.event(dev, 'Warning', reason, message);
    }
    // Capacity appearing re-enqueues queued devices; look again now and then anyway.
    return requeueAfter(UnschedulableRecheckMs);
  }
}
