// The device controller: places a Device on a machine and follows it through its life.
//
// - Scheduling: a queued Device is bound to one available Hardware of its metro/facility and plan (and
//   reservation), gets its IPs, and its provisioning Workflow is created — all in ONE store transaction, so a
//   machine or an address is never given twice (the loser of a race gets a conflict and decides again). A
//   Device that cannot be placed stays `queued` with Scheduled=False and a reason; it is placed when capacity
//   appears.
// - Lifecycle: the Device's state, progress and conditions follow its current Workflow; success makes it
//   `active` and the Hardware `in-use`; failure ends it `failed` with what broke (or, with
//   `spec.remediation: reschedule`, moves it to another machine and keeps its IPs).
// - Actions: the `metalplane.dev/action` annotation asks for power_on, power_off, reboot, reinstall, rescue.
// - Deletion: the finalizer holds the Device while the machine is wiped (deprovision workflow); then, in one
//   transaction, the IPs are released, the Hardware returns to `available` and the finalizer goes.
import { BmcError } from '../../drivers/bmc/types.js';
import { DeviceActionAnnotation, DeviceFinalizerName, type DeviceActionType, type DeviceIp, type DeviceSpec, type DeviceStatus, type DeviceState } from '../../kinds/device.js';
import type { HardwareSpec, HardwareStatus } from '../../kinds/hardware.js';
import type { IPAddressSpec } from '../../kinds/ip-address.js';
import type { IPPoolSpec } from '../../kinds/ip-pool.js';
import { isProvisionableOn, operatingSystemName } from '../../kinds/operating-system.js';
import type { KubeObject, StoredObject } from '../../kinds/types.js';
import type { WorkflowPurpose, WorkflowSpec, WorkflowStatus } from '../../kinds/workflow.js';
import { isApiError } from '../../lib/errors.js';
import type { TxWrite } from '../../runtime/client.js';
import { formatTime, getCondition, setConditions, type ConditionInput } from '../../runtime/conditions.js';
import { Controller, done, requeueAfter, type Reconciler, type Result } from '../../runtime/controller.js';
import { splitKey } from '../../runtime/cache.js';
import type { Informer } from '../../runtime/informer.js';
import { childLogger, type Logger } from '../../runtime/logger.js';
import { IpExhaustedError, planDeviceAddresses, type Claim, type Pool } from '../ipam/allocate.js';
import { bmcFor, informersOf, Mutex, type ProvisioningDeps, type ProvisioningKinds } from '../provisioning-context.js';
import { isFinished, percentage } from '../workflow/state.js';
import { deprovisionActions, provisionActions, rescueActions, workflowName } from '../workflow/templates.js';

export const DeviceFinalizer = DeviceFinalizerName;
const FieldManager = 'metalplane-device-controller';
const MaxReschedules = 3;
const DefaultAddresses: Array<{ family: 4 | 6; public: boolean }> = [
  { family: 4, public: true },
  { family: 4, public: false },
  { family: 6, public: true },
];

type Informers = Record<keyof ProvisioningKinds, Informer>;

const PoolIndex = 'pool';

export function createDeviceController(deps: ProvisioningDeps, opts: { workers?: number } = {}): Controller {
  const inf = informersOf(deps);
  if (!inf.ipAddress.cache.hasIndex(PoolIndex)) inf.ipAddress.addIndex(PoolIndex, (o) => [(o.spec as IPAddressSpec).pool]);
  const reconciler = new DeviceReconciler(deps, inf);
  const byHardwareClaim = (o: StoredObject): string[] => {
    const c = (o.status as HardwareStatus | undefined)?.claim;
    return c ? [`${c.namespace}/${c.name}`] : [];
  };
  const controller = new Controller({
    name: 'device',
    reconciler,
    // Many workers: a placement's commit is waited for outside the scheduling lock, so they group.
    workers: opts.workers ?? 16,
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [
      { informer: inf.device },
      // A workflow's progress moves its device.
      { informer: inf.workflow, map: (o) => ((o.spec as WorkflowSpec).device ? [`${o.metadata.namespace}/${(o.spec as WorkflowSpec).device}`] : []) },
      // A machine that frees up may place a queued device; a claimed one moves its device.
      {
        informer: inf.hardware,
        map: (o) => {
          const st = o.status as HardwareStatus | undefined;
          if (st?.claim) return byHardwareClaim(o);
          if (st?.state !== 'available') return [];
          return reconciler.queuedKeys();
        },
      },
    ],
  });
  return controller;
}

export class DeviceReconciler implements Reconciler {
  private readonly log: Logger;
  private readonly lock = new Mutex();
  /** Placements committed but maybe not yet in the informers' caches (kube-scheduler's "assume"). */
  private readonly assumedHardware = new Map<string, number>();
  private readonly assumedIps = new Map<string, number>();

  constructor(
    private readonly deps: ProvisioningDeps,
    private readonly inf: Informers,
  ) {
    this.log = childLogger(deps.logger, { controller: 'device' });
  }

  /** Keys of devices waiting for a machine. */
  queuedKeys(): string[] {
    const out: string[] = [];
    for (const d of this.inf.device.list()) {
      const st = d.status as DeviceStatus | undefined;
      if (!st?.hardware && !d.metadata.deletionTimestamp) out.push(`${d.metadata.namespace}/${d.metadata.name}`);
    }
    return out;
  }

  private now(): string {
    return formatTime(this.deps.clock.now());
  }

  private event(obj: StoredObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    void this.deps.recorder?.record(obj, type, reason, message);
  }

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const dev = await this.deps.client.get(this.deps.kinds.device, namespace, name);
    if (!dev) return done;
    try {
      if (dev.metadata.deletionTimestamp) return await this.finalize(dev);
      if (!dev.metadata.finalizers?.includes(DeviceFinalizer)) {
        await this.deps.client.update(this.deps.kinds.device, { ...dev, metadata: { ...dev.metadata, finalizers: [...(dev.metadata.finalizers ?? []), DeviceFinalizer] } }, { fieldManager: FieldManager });
        return done;
      }
      const st = (dev.status ?? {}) as DeviceStatus;
      if (!st.hardware) return await this.schedule(namespace!, name);
      return await this.follow(dev);
    } catch (e) {
      if (isApiError(e) && e.code === 409) return requeueAfter(5);
      throw e;
    }
  }

  // ---- scheduling --------------------------------------------------------------------------------------

  /**
   * Placement decisions are made one at a time (under the lock) against the caches plus what was decided but
   * not yet seen in them (the assume sets); the commits run outside the lock, so concurrent placements share
   * one group commit. A failed commit forgets its assumptions and decides again.
   */
  private async schedule(namespace: string, name: string): Promise<Result> {
    const d = await this.lock.run(() => this.decide(namespace, name));
    if ('result' in d) return d.result;
    try {
      await this.deps.client.transact(d.writes, { fieldManager: FieldManager });
    } catch (e) {
      this.assumedHardware.delete(d.hardware);
      for (const k of d.ipKeys) this.assumedIps.delete(k);
      // Someone else changed the machine, took an address, or edited the device: decide again.
      if (isApiError(e) && e.code === 409) return requeueAfter(1);
      throw e;
    }
    this.event(d.device, 'Normal', 'Scheduled', d.message);
    return done;
  }

  private async decide(namespace: string, name: string): Promise<{ result: Result } | { device: StoredObject; hardware: string; ipKeys: string[]; writes: TxWrite[]; message: string }> {
    // Read again inside the lock: the previous placement may have been this very device.
    const dev = await this.deps.client.get(this.deps.kinds.device, namespace, name);
    if (!dev || dev.metadata.deletionTimestamp || (dev.status as DeviceStatus | undefined)?.hardware) return { result: done };
    const spec = dev.spec as DeviceSpec;
    const st = (dev.status ?? {}) as DeviceStatus;

    const problem = this.checkRefs(spec);
    if (problem) return { result: await this.unschedulable(dev, problem.reason, problem.message) };

    const metro = spec.metro ?? (this.inf.facility.get(undefined, spec.facility!)?.spec as { metro?: string } | undefined)?.metro;
    const candidates = this.candidates(spec, metro);
    if (candidates.length === 0) return { result: await this.unschedulable(dev, 'NoCapacity', this.noCapacityMessage(spec, metro)) };
    const hw = candidates[0]!;
    const hspec = hw.spec as HardwareSpec;

    // IPs: kept across a reschedule in the same metro, else planned now.
    let ips = st.ipAddresses && st.metro === hspec.metro ? st.ipAddresses : undefined;
    const ipWrites: TxWrite[] = [];
    const ipKeys: string[] = [];
    if (!ips) {
      try {
        const planned = this.planAddresses(dev, hspec.metro, spec.ipAddresses ?? DefaultAddresses);
        ips = planned.ips;
        ipWrites.push(...planned.writes);
        ipKeys.push(...planned.keys);
      } catch (e) {
        if (e instanceof IpExhaustedError) return { result: await this.unschedulable(dev, 'NoIPAddresses', e.message) };
        throw e;
      }
    }

    const now = this.now();
    const wfName = workflowName(dev.metadata.name, 'provision', dev.metadata.resourceVersion);
    const workflow = this.workflowObject(dev, hw, wfName, 'provision');
    const conditions = setConditions(
      st.conditions,
      [
        { type: 'Scheduled', status: 'True', reason: 'Scheduled', message: `bound to hardware ${hw.metadata.name} in ${hspec.facility}`, observedGeneration: dev.metadata.generation },
        { type: 'Ready', status: 'False', reason: 'Provisioning', message: 'the machine is being provisioned', observedGeneration: dev.metadata.generation },
      ],
      this.deps.clock.now(),
    ).conditions;
    const devStatus: DeviceStatus = {
      ...st,
      state: st.state === 'reinstalling' ? 'reinstalling' : 'provisioning',
      hardware: hw.metadata.name,
      facility: hspec.facility,
      metro: hspec.metro,
      ipAddresses: ips,
      provisioningPercentage: 0,
      workflow: wfName,
      conditions,
      observedGeneration: dev.metadata.generation,
    };
    const hwStatus: HardwareStatus = {
      ...((hw.status ?? {}) as HardwareStatus),
      state: 'provisioning',
      claim: { namespace, name: dev.metadata.name, uid: dev.metadata.uid },
      workflow: { namespace, name: wfName },
    };
    this.assumedHardware.set(hw.metadata.name, Number(hw.metadata.resourceVersion));
    for (const k of ipKeys) this.assumedIps.set(k, 0);
    return {
      device: dev,
      hardware: hw.metadata.name,
      ipKeys,
      writes: [
        { op: 'update', kind: this.deps.kinds.hardware, object: { ...hw, status: hwStatus }, subresource: 'status' },
        ...ipWrites,
        { op: 'create', kind: this.deps.kinds.workflow, object: workflow },
        { op: 'update', kind: this.deps.kinds.device, object: { ...dev, status: devStatus }, subresource: 'status' },
      ],
      message: `Bound to hardware ${hw.metadata.name} (${hspec.facility}, rack ${hspec.rack ?? '-'}); addresses ${ips.map((i) => i.address).join(', ')}`,
    };
  }

  private checkRefs(spec: DeviceSpec): { reason: string; message: string } | undefined {
    const known = (inf: Informer) => inf.list().map((o) => o.metadata.name).sort();
    if (!this.inf.plan.get(undefined, spec.plan)) {
      return { reason: 'InvalidPlan', message: `spec.plan: ${JSON.stringify(spec.plan)} is not a plan; known plans: ${known(this.inf.plan).join(', ')}` };
    }
    const os = this.inf.operatingSystem.get(undefined, operatingSystemName(spec.operatingSystem));
    if (!os) {
      const slugs = this.inf.operatingSystem.list().map((o) => (o.spec as { slug: string }).slug).sort();
      return { reason: 'InvalidOperatingSystem', message: `spec.operatingSystem: ${JSON.stringify(spec.operatingSystem)} is not an operating system; known: ${slugs.join(', ')}` };
    }
    const on = ((os.spec as { provisionableOn?: string[] }).provisionableOn ?? []);
    if (!isProvisionableOn(on, spec.plan)) {
      return { reason: 'InvalidOperatingSystem', message: `operating system ${spec.operatingSystem} cannot be installed on plan ${spec.plan} (it is for ${on.join(', ')})` };
    }
    if (spec.facility && !this.inf.facility.get(undefined, spec.facility)) {
      return { reason: 'InvalidFacility', message: `spec.facility: ${JSON.stringify(spec.facility)} is not a facility; known: ${known(this.inf.facility).join(', ')}` };
    }
    if (spec.metro && spec.facility) {
      const fm = (this.inf.facility.get(undefined, spec.facility)!.spec as { metro: string }).metro;
      if (fm !== spec.metro) return { reason: 'InvalidFacility', message: `facility ${spec.facility} is in metro ${fm}, not ${spec.metro}` };
    }
    return undefined;
  }

  private candidates(spec: DeviceSpec, metro: string | undefined): StoredObject[] {
    const reservation = spec.hardwareReservation && spec.hardwareReservation !== 'next-available' ? spec.hardwareReservation : undefined;
    const list = reservation ? [this.inf.hardware.get(undefined, reservation)].filter((h): h is StoredObject => !!h) : this.inf.hardware.list();
    const out: StoredObject[] = [];
    for (const hw of list) {
      const hs = hw.spec as HardwareSpec;
      const st = (hw.status ?? {}) as HardwareStatus;
      if (st.state !== 'available' || st.claim || hs.maintenance) continue;
      if (hs.plan !== spec.plan) continue;
      if (spec.facility ? hs.facility !== spec.facility : hs.metro !== metro) continue;
      const assumed = this.assumedHardware.get(hw.metadata.name);
      if (assumed !== undefined) {
        if (Number(hw.metadata.resourceVersion) <= assumed) continue;
        this.assumedHardware.delete(hw.metadata.name);
      }
      out.push(hw);
    }
    // Machines whose agent already runs (the warm pool) first: they skip power-on and netboot.
    const warm = (h: StoredObject) => (this.deps.agents.isAlive(h.metadata.name, (h.status as HardwareStatus).agent?.bootId) ? 0 : 1);
    return out.sort((a, b) => warm(a) - warm(b) || (a.metadata.name < b.metadata.name ? -1 : 1));
  }

  private noCapacityMessage(spec: DeviceSpec, metro: string | undefined): string {
    const where = spec.facility ? `facility ${spec.facility}` : `metro ${metro}`;
    if (spec.hardwareReservation && spec.hardwareReservation !== 'next-available') {
      const hw = this.inf.hardware.get(undefined, spec.hardwareReservation);
      if (!hw) return `hardware reservation ${spec.hardwareReservation} does not exist`;
      const hs = hw.spec as HardwareSpec;
      const st = (hw.status ?? {}) as HardwareStatus;
      if (hs.plan !== spec.plan) return `reserved hardware ${hw.metadata.name} is plan ${hs.plan}, not ${spec.plan}`;
      return `reserved hardware ${hw.metadata.name} is ${st.claim ? `in use by ${st.claim.namespace}/${st.claim.name}` : st.state ?? 'not discovered yet'}; waiting for it to be available`;
    }
    const counts = new Map<string, number>();
    let total = 0;
    for (const hw of this.inf.hardware.list()) {
      const hs = hw.spec as HardwareSpec;
      if (hs.plan !== spec.plan || (spec.facility ? hs.facility !== spec.facility : hs.metro !== metro)) continue;
      total++;
      const s = (hw.status as HardwareStatus | undefined)?.state ?? 'discovering';
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    if (total === 0) return `no ${spec.plan} machines exist in ${where}; the device waits until one is added`;
    const parts = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
    return `no available ${spec.plan} machine in ${where} (${total} there: ${parts}); the device waits for one to become available`;
  }

  private async unschedulable(dev: StoredObject, reason: string, message: string): Promise<Result> {
    const st = (dev.status ?? {}) as DeviceStatus;
    const prev = getCondition(st.conditions, 'Scheduled');
    const { conditions, changed } = setConditions(
      st.conditions,
      [
        { type: 'Scheduled', status: 'False', reason, message, observedGeneration: dev.metadata.generation },
        { type: 'Ready', status: 'False', reason: 'NotScheduled', message: 'the device is waiting for a machine', observedGeneration: dev.metadata.generation },
      ],
      this.deps.clock.now(),
    );
    if (changed || st.state !== 'queued') {
      await this.deps.client.updateStatus(this.deps.kinds.device, { ...dev, status: { ...st, state: 'queued', conditions, observedGeneration: dev.metadata.generation } }, { fieldManager: FieldManager });
      if (prev?.reason !== reason) this.event(dev, 'Warning', reason, message);
    }
    // Capacity appearing re-enqueues queued devices; look again now and then anyway.
    return requeueAfter(30_000);
  }

  private planAddresses(dev: StoredObject, metro: string, want: Array<{ family: 4 | 6; public: boolean }>): { ips: DeviceIp[]; writes: TxWrite[]; keys: string[] } {
    const pools: Pool[] = this.inf.ipPool.list().map((p) => ({ name: p.metadata.name, ...(p.spec as IPPoolSpec) }));
    // Only the claims on this metro's pools matter (pools do not overlap), and this runs once per placement.
    const claims: Claim[] = [];
    for (const a of pools.filter((p) => p.metro === metro).flatMap((p) => this.inf.ipAddress.cache.byIndex(PoolIndex, p.name))) {
      const s = a.spec as IPAddressSpec;
      claims.push({ key: a.metadata.name, pool: s.pool, family: s.family, network: s.network, prefix: s.prefix, project: s.project, kind: s.use });
      this.assumedIps.delete(a.metadata.name);
    }
    const plan = planDeviceAddresses({ project: dev.metadata.namespace!, metro, want, pools, claims, reserved: new Set(this.assumedIps.keys()) });
    const device = { namespace: dev.metadata.namespace!, name: dev.metadata.name, uid: dev.metadata.uid };
    const writes: TxWrite[] = [];
    const keys: string[] = [];
    const ipObject = (name: string, spec: IPAddressSpec): KubeObject => ({
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'IPAddress',
      metadata: { name, labels: { 'metalplane.dev/metro': metro, ...(spec.project ? { 'metalplane.dev/project': spec.project } : {}) } },
      spec,
    });
    for (const b of plan.newBlocks) {
      const pool = pools.find((p) => p.name === b.pool)!;
      writes.push({ op: 'create', kind: this.deps.kinds.ipAddress, object: ipObject(b.key, { pool: b.pool, family: b.family, public: pool.public, network: b.network, prefix: b.prefix, use: 'block', project: b.project }) });
      keys.push(b.key);
    }
    const ips: DeviceIp[] = [];
    for (const a of plan.assignments) {
      writes.push({
        op: 'create',
        kind: this.deps.kinds.ipAddress,
        object: ipObject(a.key, { pool: a.pool, family: a.family, public: a.public, network: a.network, prefix: a.prefix, address: a.address, gateway: a.gateway, use: 'assignment', project: dev.metadata.namespace, device }),
      });
      keys.push(a.key);
      ips.push({ address: a.address, network: a.network, cidr: a.prefix, gateway: a.gateway, ...(a.netmask ? { netmask: a.netmask } : {}), family: a.family, public: a.public });
    }
    return { ips, writes, keys };
  }

  private workflowObject(dev: StoredObject, hw: StoredObject, name: string, purpose: WorkflowPurpose): KubeObject {
    const spec = dev.spec as DeviceSpec;
    let actions;
    if (purpose === 'deprovision') actions = deprovisionActions();
    else if (purpose === 'rescue') actions = rescueActions();
    else {
      const os = this.inf.operatingSystem.get(undefined, operatingSystemName(spec.operatingSystem));
      const ospec = (os?.spec ?? {}) as { slug?: string; image?: { url?: string }; customIpxe?: boolean };
      actions = provisionActions({
        os: spec.operatingSystem,
        imageUrl: ospec.image?.url,
        instanceId: dev.metadata.uid,
        customIpxe: ospec.customIpxe === true || spec.operatingSystem === 'custom_ipxe',
      });
    }
    return {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Workflow',
      metadata: {
        name,
        namespace: dev.metadata.namespace,
        labels: { 'metalplane.dev/hardware': hw.metadata.name, 'metalplane.dev/device': dev.metadata.name, 'metalplane.dev/purpose': purpose },
        ownerReferences: [{ apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', name: dev.metadata.name, uid: dev.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: { hardware: hw.metadata.name, device: dev.metadata.name, purpose, actions },
    };
  }

  // ---- following the workflow ------------------------------------------------------------------------

  private async follow(dev: StoredObject): Promise<Result> {
    const st = (dev.status ?? {}) as DeviceStatus;
    const ns = dev.metadata.namespace!;
    const hw = this.inf.hardware.get(undefined, st.hardware!) ?? (await this.deps.client.get(this.deps.kinds.hardware, undefined, st.hardware!));
    if (!hw) return this.fail(dev, undefined, 'HardwareGone', `hardware ${st.hardware} was removed`);
    const wf = st.workflow ? await this.deps.client.get(this.deps.kinds.workflow, ns, st.workflow) : undefined;
    if (!wf) {
      if (st.state === 'failed') return this.handleAction(dev, hw);
      // The workflow was deleted by hand: provision again on the same machine.
      return this.startWorkflow(dev, hw, 'provision');
    }
    const wspec = wf.spec as WorkflowSpec;
    const wst = wf.status as WorkflowStatus | undefined;
    if (wst?.state === 'failed') {
      if (wspec.purpose === 'provision' || wspec.purpose === 'reinstall') {
        if (st.state === 'failed' || st.state === 'queued') return this.handleAction(dev, hw);
        const f = wst.failure ?? { action: '?', reason: 'Failed', message: 'the workflow failed' };
        return this.fail(dev, hw, f.reason, `${f.action}: ${f.message}`);
      }
      // A failed rescue leaves the device as it was, with the failure reported on the action.
      return this.finishAction(dev, 'failed', `${wspec.purpose} failed: ${wst.failure?.message ?? ''}`);
    }
    if (wst?.state === 'succeeded') {
      if ((wspec.purpose === 'provision' || wspec.purpose === 'reinstall') && st.state !== 'active' && st.state !== 'inactive' && st.state !== 'powering_off' && st.state !== 'powering_on') {
        return this.activate(dev, hw, wspec.purpose);
      }
      if (wspec.purpose === 'rescue' && st.lastAction?.type === 'rescue' && st.lastAction.state === 'running') {
        return this.finishAction(dev, 'succeeded', 'the machine runs the rescue environment (in memory); reboot to return to the installed OS');
      }
      return this.handleAction(dev, hw);
    }
    // Running: report the progress.
    const state: DeviceState = wspec.purpose === 'reinstall' ? 'reinstalling' : wspec.purpose === 'provision' ? 'provisioning' : st.state ?? 'active';
    const pct = wspec.purpose === 'provision' || wspec.purpose === 'reinstall' ? percentage(wspec, wst) : st.provisioningPercentage;
    // Progress is written in steps of at least 10 points (every action of weight but the smallest), so a
    // device is not rewritten for every small step of its workflow.
    if (st.state !== state || (pct !== undefined && Math.abs(pct - (st.provisioningPercentage ?? 0)) >= 10)) {
      await this.writeStatus(dev, { ...st, state, ...(pct !== undefined ? { provisioningPercentage: pct } : {}) });
    }
    return done;
  }

  private async activate(dev: StoredObject, hw: StoredObject, purpose: WorkflowPurpose): Promise<Result> {
    const st = (dev.status ?? {}) as DeviceStatus;
    const now = this.now();
    const conditions = setConditions(
      st.conditions,
      [
        { type: 'Provisioned', status: 'True', reason: 'Provisioned', message: `${(dev.spec as DeviceSpec).operatingSystem} installed on ${hw.metadata.name}`, observedGeneration: dev.metadata.generation },
        { type: 'Ready', status: 'True', reason: 'Active', message: 'the device is active', observedGeneration: dev.metadata.generation },
      ],
      this.deps.clock.now(),
    ).conditions;
    const next: DeviceStatus = { ...st, state: 'active', provisioningPercentage: 100, provisionedAt: now, conditions, observedGeneration: dev.metadata.generation };
    if (st.lastAction?.type === 'reinstall' && st.lastAction.state === 'running') next.lastAction = { ...st.lastAction, state: 'succeeded', time: now, message: 'reinstalled' };
    const hst = (hw.status ?? {}) as HardwareStatus;
    await this.deps.client.transact(
      [
        { op: 'update', kind: this.deps.kinds.device, object: { ...dev, status: next }, subresource: 'status' },
        { op: 'update', kind: this.deps.kinds.hardware, object: { ...hw, status: { ...hst, state: 'in-use' } }, subresource: 'status' },
      ],
      { fieldManager: FieldManager },
    );
    this.event(dev, 'Normal', purpose === 'reinstall' ? 'Reinstalled' : 'Provisioned', `Device is active on ${hw.metadata.name}: ${(st.ipAddresses ?? []).map((i) => i.address).join(', ')}`);
    return done;
  }

  /** A provisioning failure: end `failed` (and mark the machine), or move to another machine. */
  private async fail(dev: StoredObject, hw: StoredObject | undefined, reason: string, message: string): Promise<Result> {
    const st = (dev.status ?? {}) as DeviceStatus;
    const spec = dev.spec as DeviceSpec;
    const now = this.now();
    const onHw = hw ? ` on hardware ${hw.metadata.name}` : '';
    const writes: TxWrite[] = [];
    const reschedule = spec.remediation === 'reschedule' && (st.rescheduled ?? 0) < MaxReschedules && hw !== undefined;
    if (hw) {
      const hst = { ...((hw.status ?? {}) as HardwareStatus) };
      hst.state = 'failed';
      hst.lastFailure = { reason, message, time: now };
      if (reschedule) {
        delete hst.claim;
        delete hst.workflow;
      }
      writes.push({ op: 'update', kind: this.deps.kinds.hardware, object: { ...hw, status: hst }, subresource: 'status' });
    }
    let next: DeviceStatus;
    if (reschedule) {
      const conditions = setConditions(
        st.conditions,
        [
          { type: 'Scheduled', status: 'False', reason: 'Rescheduling', message: `${reason}${onHw}: ${message}; moving to another machine`, observedGeneration: dev.metadata.generation },
          { type: 'Ready', status: 'False', reason: 'Rescheduling', message: 'the device is moving to another machine', observedGeneration: dev.metadata.generation },
        ],
        this.deps.clock.now(),
      ).conditions;
      next = { ...st, state: 'queued', rescheduled: (st.rescheduled ?? 0) + 1, failure: { reason, message, time: now, ...(hw ? { hardware: hw.metadata.name } : {}) }, conditions, provisioningPercentage: 0 };
      delete next.hardware;
      delete next.workflow;
      delete next.facility;
    } else {
      const conditions = setConditions(
        st.conditions,
        [{ type: 'Ready', status: 'False', reason, message: `${message}${onHw}`, observedGeneration: dev.metadata.generation }],
        this.deps.clock.now(),
      ).conditions;
      next = { ...st, state: 'failed', failure: { reason, message, time: now, ...(hw ? { hardware: hw.metadata.name } : {}) }, conditions };
      if (st.lastAction?.state === 'running') next.lastAction = { ...st.lastAction, state: 'failed', time: now, message };
    }
    writes.push({ op: 'update', kind: this.deps.kinds.device, object: { ...dev, status: next }, subresource: 'status' });
    await this.deps.client.transact(writes, { fieldManager: FieldManager });
    this.event(dev, 'Warning', reschedule ? 'Rescheduling' : 'ProvisioningFailed', `${reason}${onHw}: ${message}${reschedule ? ' — moving the device to another machine' : ''}`);
    return done;
  }

  /** Creates a workflow for the device's machine and makes it the machine's current one. */
  private async startWorkflow(dev: StoredObject, hw: StoredObject, purpose: WorkflowPurpose, action?: DeviceStatus['lastAction']): Promise<Result> {
    const st = (dev.status ?? {}) as DeviceStatus;
    const name = workflowName(dev.metadata.name, purpose, dev.metadata.resourceVersion);
    const hst = (hw.status ?? {}) as HardwareStatus;
    const state: DeviceState = purpose === 'deprovision' ? 'deprovisioning' : purpose === 'reinstall' ? 'reinstalling' : purpose === 'provision' ? 'provisioning' : st.state ?? 'active';
    const hwState = purpose === 'deprovision' ? 'deprovisioning' : purpose === 'rescue' ? hst.state : 'provisioning';
    const next: DeviceStatus = { ...st, state, workflow: name, ...(purpose === 'provision' || purpose === 'reinstall' ? { provisioningPercentage: 0 } : {}) };
    if (action) next.lastAction = action;
    if (purpose === 'reinstall' || purpose === 'provision') {
      next.conditions = setConditions(st.conditions, [{ type: 'Ready', status: 'False', reason: purpose === 'reinstall' ? 'Reinstalling' : 'Provisioning', message: 'the machine is being provisioned', observedGeneration: dev.metadata.generation }], this.deps.clock.now()).conditions;
    }
    if (purpose === 'deprovision') {
      next.conditions = setConditions(st.conditions, [{ type: 'Ready', status: 'False', reason: 'Deprovisioning', message: 'the device is being deleted: wiping the machine', observedGeneration: dev.metadata.generation }], this.deps.clock.now()).conditions;
    }
    await this.deps.client.transact(
      [
        { op: 'create', kind: this.deps.kinds.workflow, object: this.workflowObject(dev, hw, name, purpose) },
        { op: 'update', kind: this.deps.kinds.hardware, object: { ...hw, status: { ...hst, state: hwState, workflow: { namespace: dev.metadata.namespace!, name } } }, subresource: 'status' },
        { op: 'update', kind: this.deps.kinds.device, object: { ...dev, status: next }, subresource: 'status' },
      ],
      { fieldManager: FieldManager },
    );
    this.event(dev, 'Normal', purpose === 'deprovision' ? 'Deprovisioning' : `${purpose[0]!.toUpperCase()}${purpose.slice(1)}Started`, `Workflow ${name} started on ${hw.metadata.name}`);
    return done;
  }

  private async writeStatus(dev: StoredObject, status: DeviceStatus): Promise<void> {
    await this.deps.client.updateStatus(this.deps.kinds.device, { ...dev, status }, { fieldManager: FieldManager });
  }

  // ---- actions --------------------------------------------------------------------------------------

  private async handleAction(dev: StoredObject, hw: StoredObject): Promise<Result> {
    const st = (dev.status ?? {}) as DeviceStatus;
    const request = dev.metadata.annotations?.[DeviceActionAnnotation];
    if (!request || request === st.lastAction?.request) {
      return this.settlePower(dev, hw);
    }
    const type = request.split('/')[0] as DeviceActionType;
    const now = this.now();
    const running = { request, type, state: 'running' as const, time: now };
    const refuse = (message: string) => this.writeStatus(dev, { ...st, lastAction: { request, type, state: 'failed', time: now, message } }).then(() => {
      this.event(dev, 'Warning', 'ActionRefused', `${type}: ${message}`);
      return done;
    });
    if (st.state !== 'active' && st.state !== 'inactive' && !(type === 'reinstall' && st.state === 'failed')) {
      return refuse(`the device is ${st.state}; actions need it active or inactive`);
    }
    if (type === 'reinstall') {
      if ((dev.spec as DeviceSpec).locked) return refuse('the device is locked; unlock it (spec.locked: false) first');
      return this.startWorkflow(dev, hw, 'reinstall', running);
    }
    if (type === 'rescue') return this.startWorkflow(dev, hw, 'rescue', running);
    try {
      const bmc = await bmcFor(this.deps, hw);
      if (type === 'power_off') {
        await this.writeStatus(dev, { ...st, state: 'powering_off', lastAction: running });
        await bmc.setPower('off');
        this.deps.agents.forget(hw.metadata.name);
      } else if (type === 'power_on') {
        await this.writeStatus(dev, { ...st, state: 'powering_on', lastAction: running });
        await bmc.setPower('on');
      } else if (type === 'reboot') {
        // Marked running before the call: a crash right after it must not reboot the machine twice.
        await this.writeStatus(dev, { ...st, lastAction: running });
        await bmc.setPower('reset');
        this.deps.agents.forget(hw.metadata.name);
        const fresh = await this.deps.client.get(this.deps.kinds.device, dev.metadata.namespace, dev.metadata.name);
        if (fresh) return this.finishAction(fresh, 'succeeded', 'the machine was reset');
      }
    } catch (e) {
      if (e instanceof BmcError) {
        const fresh = (await this.deps.client.get(this.deps.kinds.device, dev.metadata.namespace, dev.metadata.name)) ?? dev;
        const fst = (fresh.status ?? {}) as DeviceStatus;
        if (e.transient && (fst.lastAction?.request === request)) throw e; // retried with backoff
        await this.writeStatus(fresh, { ...fst, state: st.state, lastAction: { request, type, state: 'failed', time: this.now(), message: e.message } });
        this.event(dev, 'Warning', 'ActionFailed', `${type}: ${e.message}`);
        return done;
      }
      throw e;
    }
    return requeueAfter(this.deps.timing.delayMs(2));
  }

  /** After power_on/power_off: report the state once the BMC shows it. */
  private async settlePower(dev: StoredObject, hw: StoredObject): Promise<Result> {
    const st = (dev.status ?? {}) as DeviceStatus;
    if (st.state !== 'powering_off' && st.state !== 'powering_on') return done;
    const want = st.state === 'powering_off' ? 'off' : 'on';
    let power: string;
    try {
      power = await (await bmcFor(this.deps, hw)).powerState();
    } catch (e) {
      if (e instanceof BmcError && e.transient) throw e;
      return this.finishAction(dev, 'failed', (e as Error).message, st.state === 'powering_off' ? 'active' : 'inactive');
    }
    if (power !== want) {
      const since = Date.parse(st.lastAction?.time ?? this.now());
      if (this.deps.clock.now() - since > this.deps.timing.timeoutMs(120)) {
        return this.finishAction(dev, 'failed', `the BMC accepted power ${want}, but the machine is still ${power}`, want === 'off' ? 'active' : 'inactive');
      }
      return requeueAfter(this.deps.timing.delayMs(2));
    }
    return this.finishAction(dev, 'succeeded', `the machine is powered ${want}`, want === 'off' ? 'inactive' : 'active');
  }

  private async finishAction(dev: StoredObject, state: 'succeeded' | 'failed', message: string, deviceState?: DeviceState): Promise<Result> {
    const st = (dev.status ?? {}) as DeviceStatus;
    if (!st.lastAction) return done;
    const next: DeviceStatus = { ...st, lastAction: { ...st.lastAction, state, message, time: this.now() } };
    if (deviceState) next.state = deviceState;
    const ready: ConditionInput = next.state === 'inactive'
      ? { type: 'Ready', status: 'False', reason: 'PoweredOff', message: 'the device is powered off', observedGeneration: dev.metadata.generation }
      : { type: 'Ready', status: 'True', reason: 'Active', message: 'the device is active', observedGeneration: dev.metadata.generation };
    if (next.state === 'active' || next.state === 'inactive') next.conditions = setConditions(st.conditions, [ready], this.deps.clock.now()).conditions;
    await this.writeStatus(dev, next);
    this.event(dev, state === 'succeeded' ? 'Normal' : 'Warning', state === 'succeeded' ? 'ActionSucceeded' : 'ActionFailed', `${st.lastAction.type}: ${message}`);
    return done;
  }

  // ---- deletion -------------------------------------------------------------------------------------

  private async finalize(dev: StoredObject): Promise<Result> {
    if (!dev.metadata.finalizers?.includes(DeviceFinalizer)) return done;
    const st = (dev.status ?? {}) as DeviceStatus;
    const ns = dev.metadata.namespace!;
    const hw = st.hardware ? await this.deps.client.get(this.deps.kinds.hardware, undefined, st.hardware) : undefined;
    const hst = (hw?.status ?? {}) as HardwareStatus;
    const ours = hw && hst.claim?.uid === dev.metadata.uid;
    if (ours) {
      const wf = st.workflow ? await this.deps.client.get(this.deps.kinds.workflow, ns, st.workflow) : undefined;
      const wspec = wf?.spec as WorkflowSpec | undefined;
      if (!wf || wspec!.purpose !== 'deprovision') return this.lock.run(() => this.startDeprovision(ns, dev.metadata.name));
      const wst = wf.status as WorkflowStatus | undefined;
      if (!isFinished(wst)) return done;
      return this.release(dev, hw, wst!);
    }
    return this.release(dev, undefined, undefined);
  }

  private async startDeprovision(ns: string, name: string): Promise<Result> {
    const dev = await this.deps.client.get(this.deps.kinds.device, ns, name);
    if (!dev) return done;
    const hw = await this.deps.client.get(this.deps.kinds.hardware, undefined, (dev.status as DeviceStatus).hardware!);
    if (!hw) return done;
    return this.startWorkflow(dev, hw, 'deprovision');
  }

  /** One transaction: the device's IPs go back, the machine returns to the pool, the finalizer goes. */
  private async release(dev: StoredObject, hw: StoredObject | undefined, wst: WorkflowStatus | undefined): Promise<Result> {
    const writes: TxWrite[] = [];
    for (const ip of this.inf.ipAddress.list()) {
      const s = ip.spec as IPAddressSpec;
      if (s.device?.uid === dev.metadata.uid) writes.push({ op: 'delete', kind: this.deps.kinds.ipAddress, name: ip.metadata.name });
    }
    const failedWipe = wst?.state === 'failed';
    if (hw) {
      const hst = { ...((hw.status ?? {}) as HardwareStatus) };
      delete hst.claim;
      delete hst.workflow;
      hst.state = failedWipe ? 'failed' : 'available';
      if (failedWipe) hst.lastFailure = { reason: wst!.failure?.reason ?? 'DeprovisionFailed', message: `deprovisioning failed: ${wst!.failure?.message ?? ''}`, time: this.now() };
      writes.push({ op: 'update', kind: this.deps.kinds.hardware, object: { ...hw, status: hst }, subresource: 'status' });
    }
    writes.push({ op: 'update', kind: this.deps.kinds.device, object: { ...dev, metadata: { ...dev.metadata, finalizers: (dev.metadata.finalizers ?? []).filter((f) => f !== DeviceFinalizer) } } });
    try {
      await this.deps.client.transact(writes, { fieldManager: FieldManager });
    } catch (e) {
      if (isApiError(e) && (e.code === 409 || e.code === 404)) return requeueAfter(5);
      throw e;
    }
    if (hw) {
      const msg = failedWipe ? `Hardware ${hw.metadata.name} could not be wiped and is marked failed: ${wst!.failure?.message ?? ''}` : `Hardware ${hw.metadata.name} wiped and returned to the pool`;
      this.event(hw, failedWipe ? 'Warning' : 'Normal', failedWipe ? 'DeprovisionFailed' : 'Deprovisioned', msg);
    }
    return done;
  }
}

