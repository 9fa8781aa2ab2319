// The cloudconfig controller: level-based, one CloudConfig per reconcile. It reads the CloudConfig, the objects
// its values name (from the informer caches; ConfigMaps and Secrets live, as there are many of them and few are
// read) and the CloudConfigs it reads, and then
//
// - on a cycle of CloudConfigs reading each other: Ready=False ReferenceCycle on every member (each finds the
//   cycle through itself), with the cycle in the message;
// - while a value does not resolve: Ready=False WaitingForInputs, naming each value and what it waits for; the
//   last render, if any, stays in status (devices already running it keep it);
// - otherwise renders (render.ts). A failed render (YAML broken by a value, too large) is Ready=False with the
//   reason; a good one goes into status, or into a Secret the CloudConfig owns when it is large or carries a
//   Secret's value, with its hash. Devices built from an older render are listed in status.staleDevices.
//
// Any change of an input, of a CloudConfig it reads, or of a Device that uses it enqueues it again (indexes on
// the CloudConfig informer map an input to the CloudConfigs that read it).
import { cloudConfigKind, type CloudConfigSpec, type CloudConfigStatus } from '../../kinds/cloud-config.js';
import type { Condition, KindDeclaration, KubeObject, StoredObject } from '../../kinds/types.js';
import { isConflict, isNotFound } from '../../lib/errors.js';
import { splitKey } from '../../runtime/cache.js';
import { formatTime, getCondition, setConditions, type ConditionInput } from '../../runtime/conditions.js';
import { Controller, done, type Reconciler, type Result } from '../../runtime/controller.js';
import type { Informer } from '../../runtime/informer.js';
import type { DeviceStatus } from '../../kinds/device.js';
import type { ProvisioningDeps } from '../provisioning-context.js';
import { CloudConfigConsumerIndex as ConsumerIndex, cloudConfigConsumerKeys } from '../device/cloud-config.js';
import { renderCloudConfig, statusUserData } from './render.js';
import { cloudConfigsRead, dataInputs, findCycle, inputOf, isDataKind, resolveValues, type InputKind } from './resolve.js';

const FieldManager = 'metalplane-cloudconfig-controller';
const RefIndex = 'cloudconfig-inputs';

/** A document up to this size (bytes a machine receives) is kept in status; a larger one in a Secret. */
export const InlineUserDataBytes = 16 * 1024;
/** The key of the owned Secret that holds the rendered document (the bytes a machine receives). */
export const UserDataSecretKey = 'userdata';
/** Labels the owned Secret with its CloudConfig. */
export const CloudConfigLabel = 'metalplane.dev/cloud-config';

export const CloudConfigReason = {
  Rendered: 'Rendered',
  WaitingForInputs: 'WaitingForInputs',
  ReferenceCycle: 'ReferenceCycle',
  RenderFailed: 'RenderFailed',
  TooLarge: 'TooLarge',
  SecretConflict: 'SecretConflict',
} as const;


export type CloudConfigControllerDeps = Pick<ProvisioningDeps, 'client' | 'informers' | 'clock' | 'logger' | 'recorder' | 'metrics' | 'queueMetrics'>;

/** The name of the Secret a CloudConfig's render goes into when it does not go into status. */
export function userDataSecretName(cloudConfig: string): string {
  return `${cloudConfig}-userdata`;
}

const inputKey = (namespace: string, kind: InputKind, name: string) => `${namespace}/${kind}/${name}`;

interface Kinds {
  cloudConfig: KindDeclaration;
  secret: KindDeclaration;
  byInput: Record<InputKind, KindDeclaration>;
}

export function createCloudConfigController(deps: CloudConfigControllerDeps): Controller {
  const m = (k: string) => deps.client.kind('metalplane.dev', k);
  const secret = deps.client.kind('', 'Secret');
  const cloudConfig = m(cloudConfigKind.kind);
  const kinds: Kinds = {
    cloudConfig,
    secret,
    byInput: {
      Device: m('Device'),
      IPReservation: m('IPReservation'),
      SSHKey: m('SSHKey'),
      ConfigMap: deps.client.kind('', 'ConfigMap'),
      CloudConfig: cloudConfig,
      Secret: secret,
    },
  };
  const inf = Object.fromEntries(
    Object.entries(kinds.byInput).map(([k, kind]) => [k, isDataKind(k as InputKind) ? deps.informers.metadataInformerFor(kind) : deps.informers.informerFor(kind)]),
  ) as Record<InputKind, Informer>;
  const ccInf = inf.CloudConfig;
  if (!ccInf.cache.hasIndex(RefIndex)) {
    ccInf.addIndex(RefIndex, (o) => {
      const ns = o.metadata.namespace!;
      const refs = ((o.spec as CloudConfigSpec).values ?? []).map(inputOf).filter((r) => r !== undefined);
      return refs.map((r) => inputKey(ns, r.kind, r.name));
    });
  }
  if (!inf.Device.cache.hasIndex(ConsumerIndex)) inf.Device.addIndex(ConsumerIndex, cloudConfigConsumerKeys);
  const readers = (kind: InputKind) => (o: StoredObject) =>
    o.metadata.namespace ? ccInf.cache.indexKeys(RefIndex, inputKey(o.metadata.namespace, kind, o.metadata.name)) : [];
  return new Controller({
    name: 'cloudconfig',
    reconciler: new CloudConfigReconciler(deps, kinds, inf),
    workers: 4,
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [
      // Itself, and the CloudConfigs that read it.
      { informer: ccInf, map: (o) => [`${o.metadata.namespace}/${o.metadata.name}`, ...readers('CloudConfig')(o)] },
      // A Device is an input of some and the consumer of one.
      { informer: inf.Device, map: (o) => [...readers('Device')(o), ...cloudConfigConsumerKeys(o)] },
      { informer: inf.IPReservation, map: readers('IPReservation') },
      { informer: inf.SSHKey, map: readers('SSHKey') },
      { informer: inf.ConfigMap, map: readers('ConfigMap') },
      { informer: inf.Secret, map: readers('Secret') },
    ],
  });
}

export class CloudConfigReconciler implements Reconciler {
  constructor(
    private readonly deps: CloudConfigControllerDeps,
    private readonly kinds: Kinds,
    private readonly inf: Record<InputKind, Informer>,
  ) {}

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    if (!namespace) return done;
    const cc = await this.deps.client.get(this.kinds.cloudConfig, namespace, name);
    if (!cc || cc.metadata.deletionTimestamp) return done;
    try {
      return await this.step(cc);
    } catch (e) {
      if (isConflict(e)) throw e;
      // Said in Synced, then retried with backoff.
      await this.writeStatus(cc, (st) => ({ ...st, conditions: this.conditions(st, cc, [{ type: 'Synced', status: 'False', reason: 'ReconcileError', message: (e as Error).message }]) })).catch(() => undefined);
      throw e;
    }
  }

  private async step(cc: StoredObject): Promise<Result> {
    const ns = cc.metadata.namespace!;
    const name = cc.metadata.name;
    const spec = cc.spec as CloudConfigSpec;
    const st = (cc.status ?? {}) as CloudConfigStatus;
    const gen = cc.metadata.generation;

    const cycle = findCycle(name, (n) => {
      const other = this.inf.CloudConfig.get(ns, n);
      return other ? cloudConfigsRead(other.spec as CloudConfigSpec) : [];
    });
    if (cycle) {
      const message = `CloudConfigs read each other in a cycle: ${cycle.join(' → ')}; remove one of the references`;
      await this.notReady(cc, CloudConfigReason.ReferenceCycle, message, 'Warning');
      return done;
    }

    // ConfigMaps and Secrets are read live (their informers keep only metadata, to hear of changes).
    const data = new Map<string, StoredObject | undefined>();
    for (const r of dataInputs(spec, (n) => this.inf.CloudConfig.get(ns, n))) {
      data.set(`${r.kind}/${r.name}`, await this.deps.client.get(this.kinds.byInput[r.kind], ns, r.name));
    }
    const lookup = (kind: InputKind, n: string) => (isDataKind(kind) ? data.get(`${kind}/${n}`) : this.inf[kind].get(ns, n));
    const res = resolveValues(spec, lookup);
    if (res.waiting.length) {
      await this.notReady(cc, CloudConfigReason.WaitingForInputs, `waiting for ${res.waiting.join('; ')}`);
      return done;
    }

    const out = renderCloudConfig(spec, res.values);
    if (!out.ok) {
      await this.notReady(cc, out.reason, out.message, 'Warning');
      return done;
    }

    const inSecret = res.secret || out.delivered.length > InlineUserDataBytes;
    const secretName = userDataSecretName(name);
    if (inSecret) {
      const conflict = await this.writeSecret(cc, secretName, out.delivered);
      if (conflict) {
        await this.notReady(cc, CloudConfigReason.SecretConflict, conflict, 'Warning');
        return done;
      }
    }
    const stale = this.staleDevices(ns, name, out.hash);
    const changed = st.hash !== out.hash;
    const partsWord = `${spec.parts.length} part${spec.parts.length === 1 ? '' : 's'}`;
    const written = await this.writeStatus(cc, (cur) => {
      const next: CloudConfigStatus = {
        ...cur,
        observedGeneration: gen,
        contentType: out.contentType,
        hash: out.hash,
        size: out.delivered.length,
        renderedAt: cur.hash === out.hash && cur.renderedAt ? cur.renderedAt : formatTime(this.deps.clock.now()),
        staleDevices: stale,
        conditions: this.conditions(cur, cc, [
          { type: 'Ready', status: 'True', reason: CloudConfigReason.Rendered, message: `rendered ${partsWord} as ${out.contentType}, ${out.delivered.length} bytes` },
          { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' },
        ]),
      };
      if (spec.encoding) next.encoding = spec.encoding;
      else delete next.encoding;
      if (inSecret) {
        next.secretRef = { name: secretName, key: UserDataSecretKey };
        delete next.userData;
      } else {
        next.userData = statusUserData(out.delivered, spec.encoding);
        delete next.secretRef;
      }
      if (!stale.length) delete next.staleDevices;
      return next;
    });
    if (!inSecret && st.secretRef) await this.deleteOwnedSecret(cc, st.secretRef.name);
    if (written && changed) {
      void this.deps.recorder?.record(cc, 'Normal', CloudConfigReason.Rendered, `rendered ${partsWord} (${out.delivered.length} bytes, ${out.hash.slice(0, 19)}…)`);
    }
    const before = new Set(st.staleDevices ?? []);
    const newlyStale = stale.filter((d) => !before.has(d));
    if (written && newlyStale.length) {
      void this.deps.recorder?.record(
        cc,
        'Normal',
        'StaleDevices',
        `device${newlyStale.length === 1 ? '' : 's'} ${newlyStale.join(', ')} run${newlyStale.length === 1 ? 's' : ''} an older render; reinstall to apply ${out.hash.slice(0, 19)}…`,
      );
    }
    return done;
  }

  /** Devices of the namespace using this CloudConfig whose user data came from another render. */
  private staleDevices(namespace: string, name: string, hash: string): string[] {
    return this.inf.Device.cache
      .byIndex(ConsumerIndex, `${namespace}/${name}`)
      .filter((d) => {
        const used = (d.status as DeviceStatus | undefined)?.cloudConfig;
        return used?.hash !== undefined && used.hash !== hash;
      })
      .map((d) => d.metadata.name)
      .sort();
  }

  private conditions(st: CloudConfigStatus, cc: StoredObject, inputs: ConditionInput[]): Condition[] {
    return setConditions(st.conditions, inputs.map((c) => ({ ...c, observedGeneration: cc.metadata.generation })), this.deps.clock.now()).conditions;
  }

  /** Ready=False with a reason; the last render stays. An event for failures, once per new message. */
  private async notReady(cc: StoredObject, reason: string, message: string, event?: 'Warning'): Promise<void> {
    const before = getCondition((cc.status as CloudConfigStatus | undefined)?.conditions, 'Ready');
    await this.writeStatus(cc, (cur) => ({
      ...cur,
      observedGeneration: cc.metadata.generation,
      conditions: this.conditions(cur, cc, [
        { type: 'Ready', status: 'False', reason, message },
        { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', message: '' },
      ]),
    }));
    if (event && (before?.reason !== reason || before.message !== message)) void this.deps.recorder?.record(cc, event, reason, message);
  }

  /** Writes status if it changed; true if it was written. Conflicts go back to the queue (read again). */
  private async writeStatus(cc: StoredObject, change: (st: CloudConfigStatus) => CloudConfigStatus): Promise<boolean> {
    const cur = (cc.status ?? {}) as CloudConfigStatus;
    const next = change(structuredClone(cur));
    if (JSON.stringify(next) === JSON.stringify(cur)) return false;
    await this.deps.client.updateStatus(this.kinds.cloudConfig, { ...cc, status: next }, { fieldManager: FieldManager });
    return true;
  }

  /** Creates or updates the owned Secret; returns why not if a Secret of that name belongs to someone else. */
  private async writeSecret(cc: StoredObject, name: string, delivered: Buffer): Promise<string | undefined> {
    const ns = cc.metadata.namespace!;
    const data = { [UserDataSecretKey]: delivered.toString('base64') };
    const owner = {
      apiVersion: cc.apiVersion,
      kind: cc.kind,
      name: cc.metadata.name,
      uid: cc.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    };
    const existing = await this.deps.client.get(this.kinds.secret, ns, name);
    if (!existing) {
      const obj: KubeObject = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace: ns, labels: { [CloudConfigLabel]: cc.metadata.name }, ownerReferences: [owner] },
        type: 'Opaque',
        data,
      };
      // A Secret created meanwhile fails this with AlreadyExists (a conflict): the retry reads it.
      await this.deps.client.create(this.kinds.secret, obj, { fieldManager: FieldManager });
      return undefined;
    }
    if (!existing.metadata.ownerReferences?.some((r) => r.uid === cc.metadata.uid && r.controller)) {
      return `Secret ${name} exists and is not owned by this CloudConfig; delete or rename it, the render goes there`;
    }
    const cur = (existing.data ?? {}) as Record<string, string>;
    if (cur[UserDataSecretKey] === data[UserDataSecretKey]) return undefined;
    await this.deps.client.update(this.kinds.secret, { ...existing, data: { ...cur, ...data } }, { fieldManager: FieldManager });
    return undefined;
  }

  private async deleteOwnedSecret(cc: StoredObject, name: string): Promise<void> {
    const existing = await this.deps.client.get(this.kinds.secret, cc.metadata.namespace, name);
    if (!existing?.metadata.ownerReferences?.some((r) => r.uid === cc.metadata.uid)) return;
    try {
      await this.deps.client.delete(this.kinds.secret, cc.metadata.namespace, name, { preconditions: { uid: existing.metadata.uid } });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
