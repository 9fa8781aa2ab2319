// The switch driver contract the network controller programs against: for one machine, what each of its NICs'
// switch ports carries (routed in the bond, or layer 2 with VLANs) and which BGP peers the switch accepts from
// it. A call states the whole wanted configuration of the machine (level-based, like a reconcile), so a retry or
// a repeat is harmless; drivers make it so on the switch (the simulated datacenter's fabric records it; a real
// driver would speak the switch's management protocol, e.g. OpenConfig over RESTCONF/gNMI).

export interface SwitchVlan {
  /** The VLAN id the machine sees (the Metal API's `vxlan`). */
  vid: number;
  /** The network it belongs to, unique in the fabric (a VirtualNetwork uid): two projects may both use vid 1000. */
  network: string;
}

export interface SwitchPortConfig {
  /** The NIC, e.g. `eth1`. */
  nic: string;
  /** The NIC's MAC: how the switch finds the port when the cabling is not recorded. */
  mac: string;
  /** The switch port when Hardware records the cabling, e.g. `sw1-r07:Ethernet12`. */
  switchPort?: string;
  /** layer3: the port is in the machine's routed bond (its IP addresses); layer2: VLANs only. */
  mode: 'layer3' | 'layer2';
  /** The LAG the port is in (one per machine bond), absent when the port stands alone. */
  lag?: string;
  /** Tagged VLANs. */
  vlans: SwitchVlan[];
  /** The untagged VLAN (one of vlans), if any. */
  native?: number;
}

export interface BgpNeighborConfig {
  family: 4 | 6;
  /** The machine's address the session comes from. */
  address: string;
  remoteAs: number;
  md5?: string;
  /** Announce a default route to the machine. */
  defaultRoute: boolean;
}

export interface MachineNetworkConfig {
  /** The Hardware name. */
  machine: string;
  ports: SwitchPortConfig[];
  bgp: BgpNeighborConfig[];
}

/** Where a NIC turned out to be cabled. */
export interface SwitchPortRef {
  nic: string;
  switch: string;
  port: string;
}

export type SwitchErrorKind = 'unreachable' | 'not-found' | 'rejected';

/** A configuration the switch could not take; `transient` ones are retried with backoff. */
export class SwitchError extends Error {
  readonly transient: boolean;
  constructor(
    readonly kind: SwitchErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SwitchError';
    this.transient = kind === 'unreachable';
  }
}

export interface SwitchDriver {
  /** Makes the machine's switch ports and BGP peers what `config` says; answers where each NIC is cabled. */
  configureMachine(config: MachineNetworkConfig): Promise<SwitchPortRef[]>;
}
