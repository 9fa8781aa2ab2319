// IPReservation: a block of addresses held by a project in a metro (Equinix Metal's "reserved IP block"):
// asked for by a user (public IPv4 elastic blocks), or made by the scheduler for a project's first device in
// a metro (its private IPv4 and IPv6 blocks). Namespaced (per project).
import { Type, type Static } from '@sinclair/typebox';
import { Conditions, StringEnum } from './common.js';
import type { KindDeclaration } from './types.js';
import { fieldInvalid } from './validation.js';

export const IPReservationTypes = ['public_ipv4', 'private_ipv4', 'public_ipv6'] as const;
export type IPReservationType = (typeof IPReservationTypes)[number];

const IPReservationSpecSchema = Type.Object(
  {
    metro: Type.String({ minLength: 1, description: 'The metro code, e.g. `da`.' }),
    type: StringEnum(IPReservationTypes, { description: 'public_ipv4, private_ipv4 or public_ipv6.' }),
    quantity: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 256, description: 'How many addresses (a power of two; IPv4 only; default 4).' }),
    ),
    tags: Type.Optional(Type.Array(Type.String(), { description: 'Free-form tags.' })),
    details: Type.Optional(Type.String({ description: 'A note.' })),
    managed: Type.Optional(Type.Boolean({ description: 'Made by metalplane for the project\'s devices (not by a user).' })),
  },
  { description: 'IPReservationSpec is what was asked for.' },
);

const IPReservationStatusSchema = Type.Object(
  {
    state: Type.Optional(StringEnum(['pending', 'created', 'failed'], { description: 'pending, created or failed.' })),
    network: Type.Optional(Type.String({ description: 'The network address.' })),
    cidr: Type.Optional(Type.Integer({ description: 'The prefix length.' })),
    cidrNotation: Type.Optional(Type.String({ description: 'network/cidr.' })),
    gateway: Type.Optional(Type.String({ description: 'The gateway address.' })),
    netmask: Type.Optional(Type.String({ description: 'The IPv4 netmask.' })),
    pool: Type.Optional(Type.String({ description: 'The IPPool it came from.' })),
    conditions: Type.Optional(Conditions()),
  },
  { description: 'IPReservationStatus is what was allocated.' },
);

export type IPReservationSpec = Static<typeof IPReservationSpecSchema>;
export type IPReservationStatus = Static<typeof IPReservationStatusSchema>;

export function reservationFamily(type: IPReservationType): { family: 4 | 6; public: boolean } {
  return type === 'public_ipv6' ? { family: 6, public: true } : { family: 4, public: type === 'public_ipv4' };
}

/**
 * How many addresses (IPv4) or assignment units (IPv6) the reservation holds: `spec.quantity` for public
 * IPv4 (default 4); 4 private IPv4 addresses; one IPv6 unit. Only public IPv4 takes a quantity from the user.
 */
export function reservationQuantity(spec: IPReservationSpec): number {
  return spec.quantity ?? (reservationFamily(spec.type).family === 4 ? 4 : 1);
}

export const ipReservationKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'IPReservation',
  plural: 'ipreservations',
  singular: 'ipreservation',
  scope: 'Namespaced',
  shortNames: ['ipr'],
  categories: ['metalplane'],
  statusSubresource: true,
  description:
    'IPReservation is a block of addresses a project holds in a metro: a public IPv4 block asked for by a user, ' +
    'or the project\'s private IPv4 and IPv6 blocks made for its first device there.',
  schema: Type.Object({ spec: IPReservationSpecSchema, status: Type.Optional(IPReservationStatusSchema) }),
  printerColumns: [
    { name: 'Metro', type: 'string', jsonPath: '.spec.metro', description: 'The metro.' },
    { name: 'Type', type: 'string', jsonPath: '.spec.type', description: 'The type.' },
    { name: 'Network', type: 'string', jsonPath: '.status.cidrNotation', description: 'The allocated block.' },
    { name: 'State', type: 'string', jsonPath: '.status.state', description: 'The state.' },
  ],
  selectableFields: ['.spec.metro', '.spec.type'],
  validate: (obj, old) => {
    const spec = obj.spec as IPReservationSpec;
    const causes = [];
    if (spec.quantity !== undefined) {
      if (reservationFamily(spec.type).family !== 4) causes.push(fieldInvalid('spec.quantity', spec.quantity, 'is only for IPv4 (public_ipv4, private_ipv4)'));
      else if ((spec.quantity & (spec.quantity - 1)) !== 0) causes.push(fieldInvalid('spec.quantity', spec.quantity, 'must be a power of two (1, 2, 4, … 256)'));
    }
    if (old) {
      const before = old.spec as IPReservationSpec;
      for (const f of ['metro', 'type', 'quantity'] as const) {
        if (before[f] !== spec[f]) causes.push(fieldInvalid(`spec.${f}`, spec[f], 'is immutable'));
      }
    }
    return causes;
  },
};
