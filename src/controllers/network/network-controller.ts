// The network controller: tells the switch what each machine's ports carry. Keyed by Hardware: a machine bound
// to a Device gets what the Device's spec.network declares (bond, layer 2/3, VLANs of its project) and BGP peers
// for the Device's sessions; a free machine (or one being wiped) gets the default — layer 3, all NICs bonded, no
// VLANs — so a released machine can netboot again. What it told the switch is written to the Device's
// status.network. Without a switch driver it says so there instead of pretending.
import { isApiError } from '../../lib/errors.js';
import { resolveNetwork, type DeviceNetworkStatus, type ResolvedPort } from '../../kinds/device-network.js';
import type { DeviceSpec, DeviceStatus } from '../../kinds/device.js';
import type { HardwareSpec, HardwareStatus } from '../../kinds/hardware.js';
import { BGP_CONFIG_NAME, type BGPConfigSpec } from '../../kinds/bgp-config.js';
import type { BGPSessionSpec } from '../../kinds/bgp-session.js';
import type { VirtualNetworkSpec } from '../../kinds/virtual-network.js';
import type { KindDeclaration, StoredObject } from '../../kinds/types.js';
import { SwitchError, type BgpNeighborConfig, type MachineNetworkConfig, type SwitchDriver, type SwitchPortConfig, type SwitchPortRef } from '../../drivers/switch/types.js';
import { Controller, done, requeueAfter, type Reconciler, type Result } from '../../runtime/controller.js';
import { formatTime } from '../../runtime/conditions.js';
import type { Informer } from '../../runtime/informer.js';
import { updateStatus } from '../../runtime/update-status.js';
import type { ProvisioningDeps } from '../provisioning-context.js';

const FieldManager = 'metalplane-network';
/** A configuration the switch refused is tried again after this long (someone may fix the cabling record). */
const RejectedRetryMs = 60_000;

export interface NetworkKinds {
  virtualNetwork: KindDeclaration;
  bgpConfig: KindDeclaration;
  bgpSession: KindDeclaration;
}

export interface NetworkDeps extends ProvisioningDeps {
  networkKinds: NetworkKinds;
  /** The switch driver; absent when metalplane has none for this site. */
  switches?: SwitchDriver;
}

export function networkKindsFrom(client: { kind(group: string, kind: string): KindDeclaration }): NetworkKinds {
  return { virtualNetwork: client.kind('metalplane.dev', 'VirtualNetwork'), bgpConfig: client.kind('metalplane.dev', 'BGPConfig'), bgpSession: client.kind('metalplane.dev', 'BGPSession') };
}

export function createNetworkController(deps: NetworkDeps): Controller {
  const inf = {
    hardware: deps.informers.informerFor(deps.kinds.hardware),
    device: deps.informers.informerFor(deps.kinds.device),
    vlan: deps.informers.informerFor(deps.networkKinds.virtualNetwork),
    bgpConfig: deps.informers.informerFor(deps.networkKinds.bgpConfig),
    session: deps.informers.informerFor(deps.networkKinds.bgpSession),
  };
  const hardwareOf = (dev: StoredObject | undefined): string[] => {
    const hw = (dev?.status as DeviceStatus | undefined)?.hardware;
    return hw ? [hw] : [];
  };
  const deviceNamed = (ns: string | undefined, name: string): StoredObject | undefined => (ns ? inf.device.cache.getByName(ns, name) : undefined);
  return new Controller({
    name: 'network',
    reconciler: new NetworkReconciler(deps, inf),
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    queueMetrics: deps.queueMetrics,
    watches: [
      { informer: inf.hardware },
      { informer: inf.device, map: (d) => hardwareOf(d) },
      { informer: inf.session, map: (s) => hardwareOf(deviceNamed(s.metadata.namespace, (s.spec as BGPSessionSpec).device)) },
      { informer: inf.bgpConfig, map: (c) => inf.device.cache.list(c.metadata.namespace).flatMap(hardwareOf) },
      {
        informer: inf.vlan,
        map: (v) =>
          inf.device.cache
            .list(v.metadata.namespace)
            .filter((d) => ((d.spec as DeviceSpec).network?.ports ?? []).some((p) => p.vlans?.includes(v.metadata.name)))
            .flatMap(hardwareOf),
      },
    ],
  });
}

interface Informers {
  hardware: Informer;
  device: Informer;
  vlan: Informer;
  bgpConfig: Informer;
  session: Informer;
}

/** What the machine should carry, and what could not be honoured (a missing VLAN, an address family without an address). */
export interface PlannedNetwork {
  config: MachineNetworkConfig;
  problems: string[];
}

/**
 * The switch configuration for one machine (pure): the device's declaration resolved over the machine's NICs,
 * VLAN names turned into (vid, network) by the project's VirtualNetworks of the device's metro, and one BGP peer
 * per session from the device's addresses.
 */
export function planMachineNetwork(input: {
  hardware: StoredObject;
  device?: StoredObject;
  vlans: StoredObject[];
  bgpConfig?: StoredObject;
  sessions: StoredObject[];
}): PlannedNetwork {
  const hw = input.hardware;
  const hspec = hw.spec as HardwareSpec;
  const dev = input.device && !input.device.metadata.deletionTimestamp ? input.device : undefined;
  const net = resolveNetwork(dev ? (dev.spec as DeviceSpec).network : undefined, hspec.nics);
  const problems: string[] = [];
  const metro = dev ? ((dev.status as DeviceStatus | undefined)?.metro ?? (dev.spec as DeviceSpec).metro) : undefined;
  const byName = new Map(input.vlans.map((v) => [v.metadata.name, v]));
  const vlansOf = (p: ResolvedPort): { vlans: SwitchPortConfig['vlans']; native?: number } => {
    const vlans: SwitchPortConfig['vlans'] = [];
    let native: number | undefined;
    for (const name of p.vlans) {
      const v = byName.get(name);
      const vs = v?.spec as VirtualNetworkSpec | undefined;
      if (!v || !vs) {
        problems.push(`${p.name}: VirtualNetwork ${name} does not exist in the project`);
        continue;
      }
      if (metro && vs.metro !== metro) {
        problems.push(`${p.name}: VirtualNetwork ${name} is in metro ${vs.metro}, the device in ${metro}`);
        continue;
      }
      vlans.push({ vid: vs.vxlan, network: v.metadata.uid });
      if (p.nativeVlan === name) native = vs.vxlan;
    }
    return native !== undefined ? { vlans, native } : { vlans };
  };
  const bondVlans = vlansOf(net.bond);
  const lag = `${hw.metadata.name}-${net.bond.name}`;
  const ports: SwitchPortConfig[] = net.nics.map((n) => {
    const nic = hspec.nics.find((x) => x.mac === n.mac);
    const own = n.bonded ? bondVlans : vlansOf(n);
    return {
      nic: n.name,
      mac: n.mac!,
      ...(nic?.switchPort ? { switchPort: nic.switchPort } : {}),
      mode: n.bonded && !net.bond.layer2 ? 'layer3' : 'layer2',
      ...(n.bonded ? { lag } : {}),
      ...own,
    };
  });
  const bgp: BgpNeighborConfig[] = [];
  const cfg = input.bgpConfig?.spec as BGPConfigSpec | undefined;
  if (dev && input.sessions.length) {
    const ips = (dev.status as DeviceStatus | undefined)?.ipAddresses ?? [];
    for (const s of input.sessions) {
      const ss = s.spec as BGPSessionSpec;
      if (!cfg) {
        problems.push(`BGP session ${s.metadata.name}: the project has no BGPConfig`);
        continue;
      }
      const family = ss.addressFamily === 'ipv6' ? 6 : 4;
      // IPv4 sessions come from the private address (as the original's), IPv6 ones from the public address.
      const ip = ips.find((i) => i.family === family && i.public === (family === 6));
      if (!ip) {
        problems.push(`BGP session ${s.metadata.name}: the device has no ${family === 6 ? 'public IPv6' : 'private IPv4'} address`);
        continue;
      }
      bgp.push({ family, address: ip.address, remoteAs: cfg.asn, ...(cfg.md5 ? { md5: cfg.md5 } : {}), defaultRoute: ss.defaultRoute === true });
    }
  }
  return { config: { machine: hw.metadata.name, ports, bgp }, problems };
}

export class NetworkReconciler implements Reconciler {
  constructor(
    private readonly deps: NetworkDeps,
    private readonly inf: Informers,
  ) {}

  async reconcile(key: string): Promise<Result> {
    const hw = this.inf.hardware.cache.getByName(undefined, key);
    if (!hw) return done;
    const claim = (hw.status as HardwareStatus | undefined)?.claim;
    const dev = claim ? this.inf.device.cache.getByName(claim.namespace, claim.name) : undefined;
    const device = dev && dev.metadata.uid === claim?.uid ? dev : undefined;
    const ns = device?.metadata.namespace;
    const plan = planMachineNetwork({
      hardware: hw,
      device,
      vlans: ns ? this.inf.vlan.cache.list(ns) : [],
      bgpConfig: ns ? this.inf.bgpConfig.cache.getByName(ns, BGP_CONFIG_NAME) : undefined,
      sessions: ns ? this.inf.session.cache.list(ns).filter((s) => (s.spec as BGPSessionSpec).device === device!.metadata.name) : [],
    });
    let refs: SwitchPortRef[] | undefined;
    let outcome: Pick<DeviceNetworkStatus, 'synced' | 'reason' | 'message'>;
    let result: Result = done;
    if (!this.deps.switches) {
      outcome = { synced: false, reason: 'NoSwitchDriver', message: 'no switch driver is configured for this site: the switches were not told' };
    } else {
      try {
        refs = await this.deps.switches.configureMachine(plan.config);
        outcome = plan.problems.length ? { synced: false, reason: 'Incomplete', message: plan.problems.join('; ') } : { synced: true };
      } catch (e) {
        if (!(e instanceof SwitchError) || e.transient) throw e;
        outcome = { synced: false, reason: 'SwitchRejected', message: e.message };
        result = requeueAfter(RejectedRetryMs);
      }
    }
    if (device && !device.metadata.deletionTimestamp && this.worthRecording(device, plan)) await this.record(device, outcome, refs);
    return result;
  }

  /** Devices that never asked for anything network-wise keep their status as the device controller wrote it. */
  private worthRecording(dev: StoredObject, plan: PlannedNetwork): boolean {
    return (dev.spec as DeviceSpec).network !== undefined || plan.config.bgp.length > 0 || plan.problems.length > 0 || (dev.status as DeviceStatus | undefined)?.network !== undefined;
  }

  private async record(dev: StoredObject, outcome: Pick<DeviceNetworkStatus, 'synced' | 'reason' | 'message'>, refs: SwitchPortRef[] | undefined): Promise<void> {
    try {
      await updateStatus(this.deps.client, this.deps.kinds.device, dev.metadata.namespace, dev.metadata.name, FieldManager, (cur) => {
        if (cur.metadata.uid !== dev.metadata.uid) return undefined;
        const st = (cur.status ?? {}) as DeviceStatus;
        const before = st.network;
        // The generation planned from, never a newer one this reconcile did not see (a later one will).
        if ((before?.observedGeneration ?? 0) > (dev.metadata.generation ?? 0)) return undefined;
        const next: DeviceNetworkStatus = {
          observedGeneration: dev.metadata.generation,
          ...outcome,
          ...(refs ? { switchPorts: refs.map((r) => ({ nic: r.nic, switch: r.switch, port: r.port })) } : before?.switchPorts ? { switchPorts: before.switchPorts } : {}),
        };
        if (before && JSON.stringify({ ...before, time: undefined }) === JSON.stringify({ ...next, time: undefined })) return undefined;
        return { ...st, network: { ...next, time: formatTime(this.deps.clock.now()) } };
      });
    } catch (e) {
      if (isApiError(e) && e.code === 404) return;
      throw e;
    }
  }
}
