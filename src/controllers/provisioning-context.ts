// What the provisioning controllers (device, workflow, hardware, IP reservation) share: the client, the
// informers of the kinds they read, BMC drivers, agent presence, timing and events. Passed in, never global.
import type { Clock } from '../lib/clock.js';
import { BmcError, type BmcClient, type BmcDriver } from '../drivers/bmc/types.js';
import type { SwitchDriver } from '../drivers/switch/types.js';
import type { HardwareSpec } from '../kinds/hardware.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import type { ObjectClient } from '../runtime/client.js';
import type { ControllerMetrics } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Informer, InformerFactory } from '../runtime/informer.js';
import type { Logger } from '../runtime/logger.js';
import type { QueueMetrics } from '../runtime/workqueue.js';
import type { Timing } from './timing.js';

/** Which machines' agents are up (the provisioning API knows; controllers only ask). */
export interface AgentPresence {
  isAlive(hardware: string, bootId?: string): boolean;
  /** The machine was powered off or reset: its agent is gone. */
  forget(hardware: string): void;
}

export interface ProvisioningKinds {
  device: KindDeclaration;
  hardware: KindDeclaration;
  workflow: KindDeclaration;
  ipPool: KindDeclaration;
  ipAddress: KindDeclaration;
  ipReservation: KindDeclaration;
  secret: KindDeclaration;
  plan: KindDeclaration;
  operatingSystem: KindDeclaration;
  facility: KindDeclaration;
  namespace: KindDeclaration;
  cloudConfig: KindDeclaration;
}

export interface ProvisioningDeps {
  client: ObjectClient;
  kinds: ProvisioningKinds;
  informers: InformerFactory;
  bmc: Record<string, BmcDriver>;
  /** The switch driver (the simulated fabric when the sim runs); absent: no switch is told anything. */
  switches?: SwitchDriver;
  agents: AgentPresence;
  timing: Timing;
  clock: Clock;
  logger: Logger;
  recorder?: EventRecorder;
  metrics?: ControllerMetrics;
  queueMetrics?: QueueMetrics;
}

export const SystemNamespace = 'metalplane-system';

export function kindsFrom(client: ObjectClient): ProvisioningKinds {
  const m = (k: string) => client.kind('metalplane.dev', k);
  return {
    device: m('Device'),
    hardware: m('Hardware'),
    workflow: m('Workflow'),
    ipPool: m('IPPool'),
    ipAddress: m('IPAddress'),
    ipReservation: m('IPReservation'),
    secret: client.kind('', 'Secret'),
    plan: m('Plan'),
    operatingSystem: m('OperatingSystem'),
    facility: m('Facility'),
    namespace: client.kind('', 'Namespace'),
    cloudConfig: m('CloudConfig'),
  };
}

export function informersOf(deps: ProvisioningDeps): Record<keyof ProvisioningKinds, Informer> {
  const out = {} as Record<keyof ProvisioningKinds, Informer>;
  for (const [name, kind] of Object.entries(deps.kinds) as Array<[keyof ProvisioningKinds, KindDeclaration]>) {
    out[name] = deps.informers.informerFor(kind);
  }
  return out;
}

/** A BMC client for a Hardware, with its credentials from the referenced Secret. */
export async function bmcFor(deps: ProvisioningDeps, hw: StoredObject): Promise<BmcClient> {
  const spec = hw.spec as HardwareSpec;
  const driver = deps.bmc[spec.bmc.driver];
  if (!driver) throw new Error(`hardware ${hw.metadata.name}: no BMC driver ${spec.bmc.driver}`);
  const ref = spec.bmc.credentialsSecret;
  const secret = await deps.client.get(deps.kinds.secret, ref.namespace ?? SystemNamespace, ref.name);
  const data = (secret?.data ?? {}) as Record<string, string>;
  const username = data.username ? Buffer.from(data.username, 'base64').toString() : '';
  const password = data.password ? Buffer.from(data.password, 'base64').toString() : '';
  return driver.connect(
    { driver: spec.bmc.driver, address: spec.bmc.address, systemId: spec.bmc.systemId, insecureSkipVerify: spec.bmc.insecureSkipVerify },
    { username, password },
  );
}

/** Serializes async sections (the scheduler: one placement decision at a time, so decisions never race). */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** The Synced reason of a provisioning error: what the workflow controller calls a BMC failure, too. */
export function provisioningErrorReason(err: Error): string | undefined {
  if (err instanceof BmcError) return err.kind === 'unreachable' || err.kind === 'timeout' ? 'BMCUnreachable' : 'BMCError';
  return undefined;
}
