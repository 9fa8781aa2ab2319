// IPPool: a range of addresses the operator owns in one metro (public IPv4 blocks, the private IPv4 range,
// IPv6). Devices get assignments of `assignPrefix` from it; with `projectPrefix`, each project first gets a
// block of its own (Equinix Metal's private /25 and IPv6 /56 per project and metro). Cluster-scoped.
import { Type, type Static } from '@sinclair/typebox';
import { IntegerEnum, StringEnum } from './common.js';
import type { KindDeclaration } from './types.js';

const IPPoolSpecSchema = Type.Object(
  {
    metro: Type.String({ minLength: 1, description: 'The metro code, e.g. `da`.' }),
    family: IntegerEnum([4, 6], { description: 'Address family: 4 or 6.' }),
    public: Type.Boolean({ description: 'Public (internet-routed) or private addresses.' }),
    cidr: Type.String({ description: 'The range, e.g. `147.75.80.0/22` or `2604:1380:4641::/48`.' }),
    assignPrefix: Type.Integer({ minimum: 1, maximum: 128, description: 'Prefix length of one device assignment: 31 (IPv4), 127 (IPv6).' }),
    projectPrefix: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 128, description: 'When set, each project gets a block of this prefix first (25 private IPv4, 56 IPv6).' }),
    ),
  },
  { description: 'IPPoolSpec describes the range.' },
);

const IPPoolStatusSchema = Type.Object(
  {
    allocated: Type.Optional(Type.Integer({ description: 'Assignments and blocks taken from the pool.' })),
  },
  { description: 'IPPoolStatus reports usage.' },
);

export type IPPoolSpec = Static<typeof IPPoolSpecSchema>;
export type IPPoolStatus = Static<typeof IPPoolStatusSchema>;

export const ipPoolKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'IPPool',
  plural: 'ippools',
  singular: 'ippool',
  scope: 'Cluster',
  categories: ['metalplane'],
  statusSubresource: true,
  description:
    'IPPool is a range of addresses in one metro that devices and IP reservations are allocated from: public ' +
    'IPv4, private IPv4 (one block per project) or IPv6 (one block per project).',
  schema: Type.Object({ spec: IPPoolSpecSchema, status: Type.Optional(IPPoolStatusSchema) }),
  printerColumns: [
    { name: 'Metro', type: 'string', jsonPath: '.spec.metro', description: 'The metro.' },
    { name: 'Family', type: 'integer', jsonPath: '.spec.family', description: 'Address family.' },
    { name: 'Public', type: 'boolean', jsonPath: '.spec.public', description: 'Public or private.' },
    { name: 'CIDR', type: 'string', jsonPath: '.spec.cidr', description: 'The range.' },
    { name: 'Assign', type: 'integer', jsonPath: '.spec.assignPrefix', description: 'Prefix of one assignment.' },
  ],
  selectableFields: ['.spec.metro'],
};
