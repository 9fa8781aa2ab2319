// The simulated datacenter's network: one top-of-rack switch per rack, every machine NIC cabled to a port of
// its rack's switch. Like the BMCs it is hardware: it does what it is told and records it — per port the mode
// (routed in a LAG, or layer 2), the tagged and untagged VLANs with the fabric-wide VNI each project's VLAN
// maps to (two projects may both use VLAN 1000; the VNIs keep them apart), and per switch the BGP peers it
// accepts. Its operator view (/sim/v1/switches) shows what the network was told.
import { SwitchError, type BgpNeighborConfig, type MachineNetworkConfig, type SwitchDriver, type SwitchPortRef } from '../drivers/switch/types.js';

/** Where one NIC is cabled. */
export interface SimCable {
  machine: string;
  nic: string;
  mac: string;
  switch: string;
  port: string;
}

export interface SimSwitchPortView {
  port: string;
  machine: string;
  nic: string;
  mac: string;
  mode: 'layer3' | 'layer2';
  lag?: string;
  vlans: Array<{ vid: number; vni: number }>;
  native?: number;
  /** How often this port was configured with something new. */
  changes: number;
}

export interface SimBgpPeerView extends BgpNeighborConfig {
  machine: string;
}

export interface SimSwitchView {
  name: string;
  ports: SimSwitchPortView[];
  bgpPeers: SimBgpPeerView[];
}

interface PortState {
  mode: 'layer3' | 'layer2';
  lag?: string;
  vlans: Array<{ vid: number; network: string }>;
  native?: number;
  changes: number;
}

const FIRST_VNI = 10_000;

export class SimSwitchFabric implements SwitchDriver {
  /** Read at first use: the datacenter builds its machines at start. */
  private cables: Map<string, SimCable> | undefined;
  private readonly ports = new Map<string, PortState>();
  private readonly peers = new Map<string, SimBgpPeerView[]>();
  private readonly vnis = new Map<string, number>();

  constructor(private readonly cabling: () => SimCable[]) {}

  private byKey(): Map<string, SimCable> {
    if (!this.cables || this.cables.size === 0) this.cables = new Map(this.cabling().map((c) => [`${c.switch}:${c.port}`, c]));
    return this.cables;
  }

  /** A port by its recorded name (`switch:port`) or, as a switch's MAC table would, by the MAC learned on it. */
  private find(switchPort: string | undefined, mac: string): SimCable | undefined {
    const cables = this.byKey();
    if (switchPort) return cables.get(switchPort);
    for (const c of cables.values()) if (c.mac === mac) return c;
    return undefined;
  }

  private vni(network: string): number {
    let v = this.vnis.get(network);
    if (v === undefined) {
      v = FIRST_VNI + this.vnis.size;
      this.vnis.set(network, v);
    }
    return v;
  }

  async configureMachine(config: MachineNetworkConfig): Promise<SwitchPortRef[]> {
    // Find every port first, so that a NIC that is not cabled changes nothing.
    const found = config.ports.map((p) => {
      const c = this.find(p.switchPort, p.mac);
      if (!c) throw new SwitchError('not-found', `no switch port of the simulated fabric has ${p.switchPort ? `the name ${p.switchPort}` : `learned MAC ${p.mac}`} (${config.machine} ${p.nic})`);
      return { p, c };
    });
    const switches = new Set<string>();
    for (const { p, c } of found) {
      const key = `${c.switch}:${c.port}`;
      const before = this.ports.get(key);
      const next: PortState = { mode: p.mode, ...(p.lag ? { lag: p.lag } : {}), vlans: p.vlans.map((v) => ({ vid: v.vid, network: v.network })), ...(p.native !== undefined ? { native: p.native } : {}), changes: before?.changes ?? 0 };
      // A port never told anything is routed with no VLANs (factory default): being told that is no change.
      const changed = before ? !samePort(before, next) : next.mode !== 'layer3' || next.vlans.length > 0 || next.native !== undefined;
      if (changed) next.changes++;
      for (const v of next.vlans) this.vni(v.network);
      this.ports.set(key, next);
      switches.add(c.switch);
    }
    // BGP peers live on the machine's switches (a session goes to both uplinks of a bond).
    for (const [sw, list] of this.peers) this.peers.set(sw, list.filter((n) => n.machine !== config.machine));
    for (const sw of switches) this.peers.set(sw, [...(this.peers.get(sw) ?? []), ...config.bgp.map((b) => ({ ...b, machine: config.machine }))]);
    return found.map(({ p, c }) => ({ nic: p.nic, switch: c.switch, port: c.port }));
  }

  /** Every switch with its cabled ports (as configured; ports never told anything are layer 3, no VLANs). */
  switches(): SimSwitchView[] {
    const out = new Map<string, SimSwitchView>();
    for (const [key, c] of this.byKey()) {
      const sw = out.get(c.switch) ?? { name: c.switch, ports: [], bgpPeers: this.peers.get(c.switch) ?? [] };
      out.set(c.switch, sw);
      const st = this.ports.get(key);
      sw.ports.push({
        port: c.port,
        machine: c.machine,
        nic: c.nic,
        mac: c.mac,
        mode: st?.mode ?? 'layer3',
        ...(st?.lag ? { lag: st.lag } : {}),
        vlans: (st?.vlans ?? []).map((v) => ({ vid: v.vid, vni: this.vni(v.network) })),
        ...(st?.native !== undefined ? { native: st.native } : {}),
        changes: st?.changes ?? 0,
      });
    }
    return [...out.values()];
  }

  switch(name: string): SimSwitchView | undefined {
    return this.switches().find((s) => s.name === name);
  }

  /** The ports one machine's NICs are cabled to, and the BGP peers configured for it. */
  machine(name: string): { ports: Array<SimSwitchPortView & { switch: string }>; bgpPeers: SimBgpPeerView[] } {
    const ports: Array<SimSwitchPortView & { switch: string }> = [];
    const peers: SimBgpPeerView[] = [];
    for (const sw of this.switches()) {
      for (const p of sw.ports) if (p.machine === name) ports.push({ ...p, switch: sw.name });
      for (const b of sw.bgpPeers) if (b.machine === name && !peers.some((x) => x.family === b.family && x.address === b.address)) peers.push(b);
    }
    return { ports, bgpPeers: peers };
  }
}

function samePort(a: PortState, b: PortState): boolean {
  return a.mode === b.mode && a.lag === b.lag && a.native === b.native && JSON.stringify(a.vlans) === JSON.stringify(b.vlans);
}
