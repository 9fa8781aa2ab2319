// The IP reservation controller: a user's IPReservation (e.g. 8 public IPv4 addresses in metro da) gets a
// block from the metro's pools, claimed unit by unit as IPAddress objects in the same transaction as the
// reservation's status, so it never overlaps a device's addresses or another reservation. Deleting the
// reservation releases the block (a finalizer holds it until the claims are gone).
import { ipv4Netmask, parseAddressKey, parseCidr, formatAddress } from './addresses.js';
import { IpExhaustedError, planReservation, type Pool } from './allocate.js';
import { claimIndexOf } from './claims.js';
import { reservationFamily, reservationQuantity, type IPReservationSpec, type IPReservationStatus } from '../../kinds/ip-reservation.js';
import type { IPAddressSpec } from '../../kinds/ip-address.js';
import type { IPPoolSpec } from '../../kinds/ip-pool.js';
import { isApiError } from '../../lib/errors.js';
import type { TxWrite } from '../../runtime/client.js';
import { reconcileSuccess, setConditions } from '../../runtime/conditions.js';
import { Controller, done, requeueAfter, type Reconciler, type Result } from '../../runtime/controller.js';
import { splitKey } from '../../runtime/cache.js';
import type { Informer } from '../../runtime/informer.js';
import { reportSynced } from '../../runtime/synced.js';
import { informersOf, Mutex, type ProvisioningDeps, type ProvisioningKinds } from '../provisioning-context.js';

export const ReservationFinalizer = 'metalplane.dev/ip-reservation';
const FieldManager = 'metalplane-ipam';
type Informers = Record<keyof ProvisioningKinds, Informer>;

export function createReservationController(deps: ProvisioningDeps): Controller {
  const inf = informersOf(deps);
  return new Controller({
    name: 'ip-reservation',
    reconciler: reportSynced(new ReservationReconciler(deps, inf), { client: deps.client, kind: deps.kinds.ipReservation, cache: inf.ipReservation, fieldManager: FieldManager, clock: deps.clock }),
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [{ informer: inf.ipReservation }],
  });
}

export class ReservationReconciler implements Reconciler {
  private readonly lock = new Mutex();
  constructor(
    private readonly deps: ProvisioningDeps,
    private readonly inf: Informers,
  ) {}

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    // Errors (conflicts included: another allocation took the range) go to the work queue's per-key backoff.
    return this.lock.run(() => this.step(namespace!, name));
  }

  private async step(namespace: string, name: string): Promise<Result> {
    const k = this.deps.kinds;
    const r = await this.deps.client.get(k.ipReservation, namespace, name);
    if (!r) return done;
    const spec = r.spec as IPReservationSpec;
    const st = (r.status ?? {}) as IPReservationStatus;
    const mine = this.inf.ipAddress.list().filter((a) => {
      const s = a.spec as IPAddressSpec;
      return s.reservation?.namespace === namespace && s.reservation.name === name;
    });
    if (r.metadata.deletionTimestamp) {
      if (!r.metadata.finalizers?.includes(ReservationFinalizer)) return done;
      const writes: TxWrite[] = mine.map((a) => ({ op: 'delete', kind: k.ipAddress, name: a.metadata.name }));
      writes.push({ op: 'update', kind: k.ipReservation, object: { ...r, metadata: { ...r.metadata, finalizers: r.metadata.finalizers.filter((f) => f !== ReservationFinalizer) } } });
      await this.deps.client.transact(writes, { fieldManager: FieldManager });
      return done;
    }
    if (!r.metadata.finalizers?.includes(ReservationFinalizer)) {
      await this.deps.client.update(k.ipReservation, { ...r, metadata: { ...r.metadata, finalizers: [...(r.metadata.finalizers ?? []), ReservationFinalizer] } }, { fieldManager: FieldManager });
      return done;
    }
    if (st.state === 'created') return done;
    const { family, public: isPublic } = reservationFamily(spec.type);
    const pools: Pool[] = this.inf.ipPool.list().map((p) => ({ name: p.metadata.name, ...(p.spec as IPPoolSpec) }));
    const claims = claimIndexOf(this.inf.ipAddress);
    const quantity = reservationQuantity(spec);
    let plan;
    try {
      plan = planReservation({ project: namespace, metro: spec.metro, family, public: isPublic, quantity, pools, claims });
    } catch (e) {
      if (e instanceof IpExhaustedError || (isApiError(e) && e.code < 500)) {
        const conditions = setConditions(
          st.conditions,
          [{ type: 'Ready', status: 'False', reason: e instanceof IpExhaustedError ? 'NoIPAddresses' : 'Invalid', message: e.message, observedGeneration: r.metadata.generation }, reconcileSuccess(r.metadata.generation)],
          this.deps.clock.now(),
        );
        if (conditions.changed || st.state !== 'pending') {
          await this.deps.client.updateStatus(k.ipReservation, { ...r, status: { ...st, state: 'pending', conditions: conditions.conditions } }, { fieldManager: FieldManager });
        }
        return requeueAfter(60_000);
      }
      throw e;
    }
    const b = plan.block;
    const cidr = parseCidr(`${b.network}/${b.prefix}`);
    const gateway = formatAddress(family, cidr.network + 1n);
    const pool = pools.find((p) => p.name === b.pool)!;
    const writes: TxWrite[] = plan.unitKeys.map((key) => {
      const u = parseAddressKey(key)!;
      return {
        op: 'create',
        kind: k.ipAddress,
        object: {
          apiVersion: 'metalplane.dev/v1alpha1',
          kind: 'IPAddress',
          metadata: { name: key, labels: { 'metalplane.dev/metro': spec.metro, 'metalplane.dev/project': namespace } },
          spec: { pool: pool.name, family, public: pool.public, network: formatAddress(family, u.network), prefix: u.prefix, use: 'reservation', project: namespace, reservation: { namespace, name } } satisfies IPAddressSpec,
        },
      } satisfies TxWrite;
    });
    const status: IPReservationStatus = {
      ...st,
      state: 'created',
      network: b.network,
      cidr: b.prefix,
      cidrNotation: `${b.network}/${b.prefix}`,
      gateway,
      ...(family === 4 ? { netmask: ipv4Netmask(b.prefix) } : {}),
      pool: pool.name,
      conditions: setConditions(
        st.conditions,
        [{ type: 'Ready', status: 'True', reason: 'Allocated', message: `${b.network}/${b.prefix} from pool ${pool.name}`, observedGeneration: r.metadata.generation }, reconcileSuccess(r.metadata.generation)],
        this.deps.clock.now(),
      ).conditions,
    };
    writes.push({ op: 'update', kind: k.ipReservation, object: { ...r, status }, subresource: 'status' });
    await this.deps.client.transact(writes, { fieldManager: FieldManager });
    return done;
  }
}

