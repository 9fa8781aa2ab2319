// VirtualNetwork: a project's VLAN in one metro (Equinix Metal's "virtual network"), with the VLAN id (`vxlan`,
// 2–3999) the project's devices see on their ports. The vxlan is unique within the project and metro, and the
// object's name says so — `<metro>-<vxlan>`, e.g. `da-1000` — so the store's unique keys keep it unique even
// when two creates race (as IPAddress names carry their range). Devices attach their ports to it in
// Device spec.network; the network controller tells the switch.
import { Type } from '@sinclair/typebox';
import type { KindDeclaration } from './types.js';
import { fieldInvalid } from './validation.js';

export const VXLAN_MIN = 2;
export const VXLAN_MAX = 3999;
/** Where a vxlan is picked when the user names none (the original's "next available in 1000–1999"). */
export const VXLAN_AUTO = [1000, 1999] as const;

export interface VirtualNetworkSpec {
  metro: string;
  vxlan: number;
  description?: string;
  tags?: string[];
}

/** The one name a VLAN may have. */
export function virtualNetworkName(metro: string, vxlan: number): string {
  return `${metro}-${vxlan}`;
}

export const virtualNetworkKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'VirtualNetwork',
  plural: 'virtualnetworks',
  singular: 'virtualnetwork',
  scope: 'Namespaced',
  shortNames: ['vlan', 'vlans'],
  categories: ['metalplane'],
  description:
    'VirtualNetwork is a VLAN of the project in one metro. Its name is `<metro>-<vxlan>` (e.g. `da-1000`), so a ' +
    'vxlan is never used twice in a project and metro. Devices carry it on their ports (Device spec.network).',
  schema: Type.Object({
    spec: Type.Object(
      {
        metro: Type.String({ pattern: '^[a-z]{2,3}$', description: 'The metro code, e.g. `da`.' }),
        vxlan: Type.Integer({ minimum: VXLAN_MIN, maximum: VXLAN_MAX, description: `The VLAN id the devices see, ${VXLAN_MIN}–${VXLAN_MAX}.` }),
        description: Type.Optional(Type.String({ maxLength: 1024, description: 'Free text.' })),
        tags: Type.Optional(Type.Array(Type.String(), { description: 'Free-form tags.', 'x-kubernetes-list-type': 'set' })),
      },
      { description: 'VirtualNetworkSpec is the VLAN.' },
    ),
  }),
  printerColumns: [
    { name: 'Metro', type: 'string', jsonPath: '.spec.metro', description: 'The metro.' },
    { name: 'VXLAN', type: 'integer', jsonPath: '.spec.vxlan', description: 'The VLAN id.' },
    { name: 'Description', type: 'string', jsonPath: '.spec.description', priority: 1, description: 'Free text.' },
  ],
  selectableFields: ['.spec.metro'],
  validate: (obj) => {
    const spec = obj.spec as VirtualNetworkSpec;
    const want = virtualNetworkName(spec.metro, spec.vxlan);
    if (obj.metadata.name !== undefined && obj.metadata.name !== want) {
      return [fieldInvalid('metadata.name', obj.metadata.name, `must be ${JSON.stringify(want)} (<metro>-<vxlan>): a vxlan is unique in a project and metro`)];
    }
    return [];
  },
};
