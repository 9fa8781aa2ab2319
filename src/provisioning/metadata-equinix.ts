// Equinix Metal's metadata document (`GET /metadata`, what `curl metadata.platformequinix.com/metadata` gives a
// machine), from a MachineView. Field names and shapes follow the original, so scripts written for it (and
// tools like packet-networking) read it unchanged.
import { uuidV5 } from '../kinds/device-network.js';
import { bondMac, type MachineAddress, type MachineView } from './metadata-view.js';

function ipv4Netmask(prefix: number): string {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

function addressJson(v: MachineView, a: MachineAddress): Record<string, unknown> {
  return {
    // Stable for the device and address, as the Metal API's assignment ids are stable.
    id: uuidV5(`metadata-address/${v.id}/${a.address}`),
    address_family: a.family,
    ...(a.family === 4 ? { netmask: a.netmask ?? ipv4Netmask(a.cidr) } : {}),
    public: a.public,
    management: a.management,
    enabled: true,
    cidr: a.cidr,
    network: a.network,
    address: a.address,
    gateway: a.gateway,
  };
}

/** `bonded` when every NIC is in the bond, `individual` when none is, `mixed` otherwise (hybrid). */
function linkAggregation(v: MachineView): string {
  const bonded = v.network.nics.filter((n) => n.bonded).length;
  if (bonded === v.network.nics.length) return 'bonded';
  return bonded === 0 ? 'individual' : 'mixed';
}

/** The month of the device's creation, for its iSCSI qualified name (`iqn.2026-11.dev.metalplane:device.1a2b3c4d`). */
function iqnOf(v: MachineView): string {
  const month = /^\d{4}-\d{2}/.exec(v.createdAt)?.[0] ?? '1970-01';
  return `iqn.${month}.dev.metalplane:device.${v.id.slice(0, 8)}`;
}

export function equinixMetadata(v: MachineView): Record<string, unknown> {
  const mac = bondMac(v);
  return {
    id: v.id,
    hostname: v.hostname,
    iqn: iqnOf(v),
    operating_system: {
      slug: v.operatingSystem.slug,
      ...(v.operatingSystem.distro ? { distro: v.operatingSystem.distro } : {}),
      ...(v.operatingSystem.version ? { version: v.operatingSystem.version } : {}),
      license_activation: { state: 'unlicensed' },
      image_tag: null,
    },
    plan: v.plan,
    class: v.plan,
    facility: v.facility ?? null,
    metro: v.metro ?? null,
    tags: v.tags,
    ssh_keys: v.sshKeys.map((k) => k.key),
    network: {
      bonding: { mode: 4, link_aggregation: linkAggregation(v), mac: mac ?? null },
      interfaces: v.network.nics.map((n) => ({ name: n.name, mac: n.mac, ...(n.bonded ? { bond: v.network.bond.name } : {}) })),
      // A layer 2 bond carries no addresses: the machine has none configured, as on the original.
      addresses: v.network.bond.layer2 ? [] : v.addresses.map((a) => addressJson(v, a)),
    },
    network_type: v.network.type,
    customdata: v.customData,
    volumes: [],
    api_url: v.urls.api,
    phone_home_url: v.urls.phoneHome,
    user_state_url: v.urls.userState,
  };
}
