// The EC2-style metadata tree (`<version>/meta-data/…`) that cloud-init's Ec2 datasource and its ec2 helper
// walk: a directory answers its entries one a line (a sub-directory with a trailing `/`), a leaf its value.
// `public-keys/` lists `0=<name>` and the key is at `public-keys/0/openssh-key`, as on EC2.
import { bondMac, firstAddress, type MachineView } from './metadata-view.js';

/** The versions cloud-init asks for (its Ec2 datasource probes the newest it knows first); all serve one tree. */
export const Ec2Versions: readonly string[] = ['latest', '2021-03-23', '2018-09-24', '2016-09-02', '2009-04-04'];

export type Ec2Node = string | { [name: string]: Ec2Node };

export function ec2Tree(v: MachineView): { [name: string]: Ec2Node } {
  const pub4 = firstAddress(v, 4, true);
  const priv4 = firstAddress(v, 4, false);
  const pub6 = firstAddress(v, 6, true);
  const mac = bondMac(v) ?? v.network.nics[0]?.mac;
  const keys: { [name: string]: Ec2Node } = {};
  v.sshKeys.forEach((k, i) => (keys[String(i)] = { 'openssh-key': k.key }));
  const of = (family: 4 | 6, isPublic: boolean): string =>
    v.addresses.filter((a) => a.family === family && a.public === isPublic).map((a) => a.address).join('\n');
  const tree: { [name: string]: Ec2Node } = {
    'ami-id': v.operatingSystem.slug,
    hostname: v.hostname,
    'instance-id': v.id,
    'instance-type': v.plan,
    'local-hostname': v.hostname,
    'public-hostname': v.hostname,
    ...(priv4 ? { 'local-ipv4': priv4.address } : {}),
    ...(pub4 ? { 'public-ipv4': pub4.address } : {}),
    ...(pub6 ? { ipv6: pub6.address } : {}),
    ...(mac ? { mac } : {}),
    placement: { ...(v.facility ? { 'availability-zone': v.facility } : {}), ...(v.metro ? { region: v.metro } : {}) },
    'public-keys': keys,
  };
  if (mac) {
    const leaves: { [name: string]: Ec2Node } = { 'device-number': '0', mac };
    if (of(4, false)) leaves['local-ipv4s'] = of(4, false);
    if (of(4, true)) leaves['public-ipv4s'] = of(4, true);
    if (of(6, true)) leaves.ipv6s = of(6, true);
    tree.network = { interfaces: { macs: { [mac]: leaves } } };
  }
  return tree;
}

/**
 * The answer at `path` (the segments under `meta-data/`, none for the root): a leaf's value or a directory's
 * listing; undefined when there is nothing there (a 404).
 */
export function ec2MetaData(v: MachineView, path: string[]): string | undefined {
  let node: Ec2Node = ec2Tree(v);
  const segments = path.filter((s) => s !== '');
  for (const s of segments) {
    if (typeof node === 'string' || !Object.hasOwn(node, s)) return undefined;
    node = node[s]!;
  }
  if (typeof node === 'string') return node;
  const dir = node;
  const isKeys = segments.length === 1 && segments[0] === 'public-keys';
  return Object.keys(dir)
    .map((name) => {
      // `0=<name>`: the name must not carry the separators of the listing.
      if (isKeys) return `${name}=${(v.sshKeys[Number(name)]?.name ?? `key-${name}`).replace(/[^A-Za-z0-9@._-]/g, '-')}`;
      return typeof dir[name] === 'string' ? name : `${name}/`;
    })
    .join('\n');
}
