// cloud-init's NoCloud datasource files from a MachineView: `meta-data` (YAML: instance-id, hostname, keys),
// `network-config` (netplan-style version 2: the NICs matched by MAC, the bond with its addresses and routes) and
// `vendor-data` (the cloud-config of the provider: phone home when the OS is up). `user-data` is the device's own.
import { stringify } from 'yaml';
import { bondHasAddresses, bondMac, firstAddress, type MachineView } from './metadata-view.js';

export function nocloudMetaData(v: MachineView): string {
  const lines = [
    `instance-id: ${v.id}`,
    `local-hostname: ${v.hostname}`,
    ...(v.metro ? [`metro: ${v.metro}`] : []),
    ...(v.facility ? [`facility: ${v.facility}`] : []),
    `plan: ${v.plan}`,
    ...(v.sshKeys.length ? ['public-keys:', ...v.sshKeys.map((k) => `  - ${JSON.stringify(k.key)}`)] : []),
  ];
  return lines.join('\n') + '\n';
}

/** Whether an IPv4 address is in 10.0.0.0/8, where Equinix Metal's private networks of a project live. */
function inTen(address: string): boolean {
  return address.startsWith('10.');
}

/** The bond's routes: the default routes through the public gateways, the private network through its own. */
function routesOf(v: MachineView): Array<{ to: string; via: string }> {
  const routes: Array<{ to: string; via: string }> = [];
  const pub4 = firstAddress(v, 4, true);
  const priv4 = firstAddress(v, 4, false);
  const pub6 = firstAddress(v, 6, true);
  if (pub4) routes.push({ to: '0.0.0.0/0', via: pub4.gateway });
  // Without a public IPv4 address the private gateway is the way out (a private-only device).
  if (priv4 && !pub4) routes.push({ to: '0.0.0.0/0', via: priv4.gateway });
  else if (priv4 && inTen(priv4.address)) routes.push({ to: '10.0.0.0/8', via: priv4.gateway });
  if (pub6) routes.push({ to: '::/0', via: pub6.gateway });
  return routes;
}

/** cloud-init network config version 2 (docs: "Networking config Version 2"). */
export function nocloudNetworkConfig(v: MachineView): Record<string, unknown> {
  const ethernets: Record<string, unknown> = {};
  for (const n of v.network.nics) ethernets[n.name] = { match: { macaddress: n.mac }, 'set-name': n.name };
  const config: Record<string, unknown> = { version: 2, ...(v.network.nics.length ? { ethernets } : {}) };
  const members = v.network.nics.filter((n) => n.bonded).map((n) => n.name);
  if (members.length) {
    const withAddresses = bondHasAddresses(v);
    const routes = withAddresses ? routesOf(v) : [];
    config.bonds = {
      [v.network.bond.name]: {
        interfaces: members,
        macaddress: bondMac(v),
        // LACP, as Equinix Metal's switches are configured (bonding mode 4).
        parameters: { mode: '802.3ad', 'lacp-rate': 'fast', 'mii-monitor-interval': 100, 'transmit-hash-policy': 'layer3+4' },
        ...(withAddresses && v.addresses.length ? { addresses: v.addresses.map((a) => `${a.address}/${a.cidr}`) } : {}),
        ...(routes.length ? { routes } : {}),
      },
    };
  }
  return config;
}

export function nocloudNetworkConfigYaml(v: MachineView): string {
  return stringify(nocloudNetworkConfig(v));
}

/**
 * The provider's cloud-config: cloud-init's phone_home module posts to the phone-home URL once the OS is up,
 * which completes the provisioning workflow. User data can still override it (user data wins over vendor data).
 */
export function nocloudVendorData(v: MachineView): string {
  return '#cloud-config\n' + stringify({ phone_home: { url: v.urls.phoneHome, post: ['instance_id', 'hostname', 'fqdn'], tries: 10 } });
}
