// What a machine may know about itself, gathered once per request (metadata.ts) and rendered by each format:
// Equinix Metal's `/metadata` JSON (metadata-equinix.ts), cloud-init's NoCloud files (metadata-nocloud.ts) and
// the EC2 tree (metadata-ec2.ts). Plain data, so each format is a pure function tested without a server.
import type { DeviceIp, DeviceSpec, DeviceStatus } from '../kinds/device.js';
import { resolveNetwork, type ResolvedNetwork } from '../kinds/device-network.js';
import type { HardwareSpec } from '../kinds/hardware.js';
import type { StoredObject } from '../kinds/types.js';

export interface MachineAddress extends DeviceIp {
  /** Assigned with the device (Equinix's management addresses); a reserved address assigned later is not. */
  management: boolean;
}

export interface MachineView {
  /** The device's uid: Equinix's `id`, cloud-init's `instance-id`. */
  id: string;
  name: string;
  namespace: string;
  hostname: string;
  createdAt: string;
  plan: string;
  operatingSystem: { slug: string; distro?: string; version?: string };
  metro?: string;
  facility?: string;
  tags: string[];
  customData: unknown;
  sshKeys: Array<{ name: string; key: string }>;
  addresses: MachineAddress[];
  /** The machine's ports under the device's network declaration (no NICs before it is bound to a machine). */
  network: ResolvedNetwork;
  /** Where this machine reaches its own metadata, phones home and posts its user state (token paths). */
  urls: { api: string; phoneHome: string; userState: string };
}

export interface MachineViewInputs {
  device: StoredObject;
  hardware?: StoredObject;
  operatingSystem?: StoredObject;
  sshKeys: Array<{ name: string; key: string }>;
  /** Addresses assigned to the device beyond status.ipAddresses (reserved IPs). */
  extraAddresses?: DeviceIp[];
  urls: MachineView['urls'];
}

export function machineView(i: MachineViewInputs): MachineView {
  const spec = i.device.spec as DeviceSpec;
  const st = (i.device.status ?? {}) as DeviceStatus;
  const nics = i.hardware ? (i.hardware.spec as HardwareSpec).nics : [];
  const os = i.operatingSystem?.spec as { distro?: string; version?: string } | undefined;
  const own = (st.ipAddresses ?? []).map((a) => ({ ...a, management: true }));
  const seen = new Set(own.map((a) => a.address));
  const extra = (i.extraAddresses ?? []).filter((a) => !seen.has(a.address)).map((a) => ({ ...a, management: false }));
  return {
    id: i.device.metadata.uid,
    name: i.device.metadata.name,
    namespace: i.device.metadata.namespace!,
    hostname: spec.hostname ?? i.device.metadata.name,
    createdAt: i.device.metadata.creationTimestamp ?? '',
    plan: spec.plan,
    operatingSystem: { slug: spec.operatingSystem, ...(os?.distro ? { distro: os.distro } : {}), ...(os?.version ? { version: os.version } : {}) },
    ...(st.metro ?? spec.metro ? { metro: st.metro ?? spec.metro } : {}),
    ...(st.facility ?? spec.facility ? { facility: st.facility ?? spec.facility } : {}),
    tags: spec.tags ?? [],
    customData: spec.customData ?? {},
    sshKeys: i.sshKeys,
    addresses: [...own, ...extra],
    network: resolveNetwork(spec.network, nics),
    urls: i.urls,
  };
}

/** The first address of a family and publicity, management addresses first. */
export function firstAddress(v: MachineView, family: 4 | 6, isPublic: boolean): MachineAddress | undefined {
  const all = v.addresses.filter((a) => a.family === family && a.public === isPublic);
  return all.find((a) => a.management) ?? all[0];
}

/** The MAC the bond carries: its first NIC's (Linux gives a bond the MAC of its first slave). */
export function bondMac(v: MachineView): string | undefined {
  return v.network.nics.find((n) => n.bonded)?.mac;
}

/** Whether the bond carries IP addresses (layer 3, with at least one NIC in it). */
export function bondHasAddresses(v: MachineView): boolean {
  return v.network.bond.bonded && !v.network.bond.layer2;
}
