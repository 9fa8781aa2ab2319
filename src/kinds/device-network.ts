// A device's network as the user declares it (Device `spec.network`): which of the machine's NICs are in the bond
// `bond0`, whether the bond is layer 3 (the device's IP addresses) or layer 2 (VLANs only), and the VLANs each
// port carries. Equinix Metal's port operations (bond, disbond, convert to layer 2/3, assign, native VLAN) are
// edits of this block; the network controller tells the switch, and the composite network type
// (`layer3`, `hybrid`, …) is derived from it here, in one place.
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { KeyedList } from './common.js';
import { fieldForbidden, fieldInvalid, type FieldError } from './validation.js';

/** The bond every machine has: all its NICs, in layer 3, unless the device says otherwise. */
export const BOND = 'bond0';

export const NetworkTypes = ['layer3', 'hybrid', 'hybrid-bonded', 'layer2-bonded', 'layer2-individual'] as const;
export type NetworkType = (typeof NetworkTypes)[number];

export interface DevicePortSpec {
  name: string;
  /** bond0 only: the bond carries VLANs only, no IP addresses. */
  layer2?: boolean;
  /** NICs only: false takes the NIC out of bond0 (it then carries its own VLANs). */
  bonded?: boolean;
  /** VirtualNetwork names (of the device's project) the port carries, tagged. */
  vlans?: string[];
  /** One of `vlans`, carried untagged. */
  nativeVlan?: string;
}

export interface DeviceNetworkSpec {
  ports?: DevicePortSpec[];
}

export interface DeviceNetworkStatus {
  observedGeneration?: number;
  synced?: boolean;
  reason?: string;
  message?: string;
  time?: string;
  /** The switch ports the machine's NICs are cabled to, as the switch reported them. */
  switchPorts?: Array<{ nic: string; switch: string; port: string }>;
}

export const DeviceNetworkSchema = Type.Object(
  {
    ports: Type.Optional(
      KeyedList(
        Type.Object(
          {
            name: Type.String({ minLength: 1, description: 'The port: `bond0` or a NIC of the machine (`eth0`, `eth1`, …).' }),
            layer2: Type.Optional(Type.Boolean({ description: 'bond0 only: carry VLANs only, no IP addresses (layer 2). Default false (layer 3).' })),
            bonded: Type.Optional(Type.Boolean({ description: 'NICs only: false takes the NIC out of bond0. Default true.' })),
            vlans: Type.Optional(
              Type.Array(Type.String(), {
                description: 'VirtualNetwork names of the project this port carries (bond0, or a NIC out of the bond).',
                'x-kubernetes-list-type': 'set',
              }),
            ),
            nativeVlan: Type.Optional(Type.String({ description: 'One of vlans, carried untagged.' })),
          },
          { description: 'One port of the machine and what it carries.' },
        ),
        'name',
        'Ports that differ from the default (every NIC in bond0, bond0 in layer 3, no VLANs).',
      ),
    ),
  },
  {
    description:
      'The device\'s layer 2 / layer 3 network (the Metal API\'s port operations edit it; the network controller ' +
      'tells the switch). Absent: layer 3, all NICs bonded.',
  },
);

export const DeviceNetworkStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The metadata.generation the switch was last told.' })),
    synced: Type.Optional(Type.Boolean({ description: 'The switch carries what spec.network (and the BGP sessions) ask for.' })),
    reason: Type.Optional(Type.String({ description: 'CamelCase reason when not synced.' })),
    message: Type.Optional(Type.String({ description: 'Detail.' })),
    time: Type.Optional(Type.String({ format: 'date-time', description: 'When the switch was last told.' })),
    switchPorts: Type.Optional(
      Type.Array(
        Type.Object({ nic: Type.String(), switch: Type.String(), port: Type.String() }, { description: 'A NIC and the switch port it is cabled to.' }),
        { description: 'Where the machine\'s NICs are cabled.' },
      ),
    ),
  },
  { description: 'What the network controller told the switch for this device.' },
);

/** Checks of spec.network that need no other object (the Metal API checks the rest against the machine). */
export function validateDeviceNetwork(net: DeviceNetworkSpec | undefined, path = 'spec.network'): FieldError[] {
  const causes: FieldError[] = [];
  (net?.ports ?? []).forEach((p, i) => {
    const at = `${path}.ports[${i}]`;
    if (p.name === BOND && p.bonded !== undefined) causes.push(fieldForbidden(`${at}.bonded`, 'bond0 is the bond itself; set bonded on its NICs'));
    if (p.name !== BOND && p.layer2 !== undefined) causes.push(fieldForbidden(`${at}.layer2`, 'only bond0 switches between layer 2 and layer 3; a NIC out of the bond is always layer 2'));
    if (p.name !== BOND && p.bonded !== false && p.vlans?.length) {
      causes.push(fieldForbidden(`${at}.vlans`, `${p.name} is in bond0: put the VLANs on bond0, or set bonded: false`));
    }
    if (p.nativeVlan !== undefined && !(p.vlans ?? []).includes(p.nativeVlan)) {
      causes.push(fieldInvalid(`${at}.nativeVlan`, p.nativeVlan, `must be one of the port's vlans (${(p.vlans ?? []).join(', ') || 'none'})`));
    }
  });
  return causes;
}

// ---------------------------------------------------------------- the resolved view

/** One port of a machine with every default filled in. */
export interface ResolvedPort {
  name: string;
  kind: 'bond' | 'nic';
  mac?: string;
  /** NICs: in bond0. bond0: at least one NIC is. */
  bonded: boolean;
  layer2: boolean;
  vlans: string[];
  nativeVlan?: string;
}

export interface ResolvedNetwork {
  type: NetworkType;
  bond: ResolvedPort;
  nics: ResolvedPort[];
}

/** The NIC names of a machine, as Hardware lists them (`eth<i>` when a NIC has no name). */
export function nicNames(nics: ReadonlyArray<{ name?: string; mac: string }>): Array<{ name: string; mac: string }> {
  return nics.map((n, i) => ({ name: n.name ?? `eth${i}`, mac: n.mac }));
}

/** The machine's ports under the device's declaration. */
export function resolveNetwork(net: DeviceNetworkSpec | undefined, nics: ReadonlyArray<{ name?: string; mac: string }>): ResolvedNetwork {
  const decl = new Map((net?.ports ?? []).map((p) => [p.name, p]));
  const b = decl.get(BOND);
  const layer2 = b?.layer2 === true;
  const nicPorts: ResolvedPort[] = nicNames(nics).map((n) => {
    const d = decl.get(n.name);
    const bonded = d?.bonded !== false;
    return { name: n.name, kind: 'nic', mac: n.mac, bonded, layer2: bonded ? layer2 : true, vlans: bonded ? [] : [...(d?.vlans ?? [])], ...(bonded || !d?.nativeVlan ? {} : { nativeVlan: d.nativeVlan }) };
  });
  const anyBonded = nicPorts.some((n) => n.bonded);
  const bond: ResolvedPort = {
    name: BOND,
    kind: 'bond',
    bonded: anyBonded,
    layer2,
    vlans: anyBonded ? [...(b?.vlans ?? [])] : [],
    ...(anyBonded && b?.nativeVlan ? { nativeVlan: b.nativeVlan } : {}),
  };
  return { type: networkTypeOf(bond, nicPorts), bond, nics: nicPorts };
}

/** Equinix Metal's composite network type. */
export function networkTypeOf(bond: ResolvedPort, nics: ResolvedPort[]): NetworkType {
  const allBonded = nics.every((n) => n.bonded);
  if (bond.layer2) return allBonded ? 'layer2-bonded' : 'layer2-individual';
  if (!allBonded) return 'hybrid';
  return bond.vlans.length ? 'hybrid-bonded' : 'layer3';
}

/** Turns a resolved view back into the declaration, listing only what differs from the defaults. */
export function declareNetwork(r: Omit<ResolvedNetwork, 'type'>): DeviceNetworkSpec {
  const ports: DevicePortSpec[] = [];
  if (r.bond.layer2 || r.bond.vlans.length) {
    ports.push({ name: BOND, ...(r.bond.layer2 ? { layer2: true } : {}), ...(r.bond.vlans.length ? { vlans: r.bond.vlans } : {}), ...(r.bond.nativeVlan ? { nativeVlan: r.bond.nativeVlan } : {}) });
  }
  for (const n of r.nics) {
    if (n.bonded) continue;
    ports.push({ name: n.name, bonded: false, ...(n.vlans.length ? { vlans: n.vlans } : {}), ...(n.nativeVlan ? { nativeVlan: n.nativeVlan } : {}) });
  }
  return ports.length ? { ports } : {};
}

// ---------------------------------------------------------------- stable ids

/** The namespace of metalplane's name-based UUIDs (RFC 4122 v5) for things that have no object of their own. */
const PORT_NAMESPACE = '6d3c2a8e-1f4b-5c7d-9e0a-2b4c6d8e0f12';

/** An RFC 4122 version-5 (SHA-1, name-based) UUID of `name` in `namespace`. */
export function uuidV5(name: string, namespace = PORT_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** A port's id: stable for a machine (Hardware uid) and port name, the same in the Device JSON and /ports/{id}. */
export function portId(hardwareUid: string, portName: string): string {
  return uuidV5(`port/${hardwareUid}/${portName}`);
}
