// IPAddress: the claim on one range of a pool — a device's assignment, a project's block, or a unit of an IP
// reservation. Its name is derived from the range (`ipv4-147.75.80.16-31`), so the store's unique keys make a
// double allocation impossible: of two transactions claiming the same range, the second fails and retries.
// (Kubernetes allocates Service IPs the same way, with networking.k8s.io IPAddress objects.) Cluster-scoped.
import { Type, type Static } from '@sinclair/typebox';
import { IntegerEnum, StringEnum } from './common.js';
import type { KindDeclaration, StoredObject } from './types.js';

const IPAddressSpecSchema = Type.Object(
  {
    pool: Type.String({ description: 'The IPPool it comes from.' }),
    family: IntegerEnum([4, 6], { description: 'Address family.' }),
    public: Type.Boolean({ description: 'Public or private.' }),
    network: Type.String({ description: 'The network address of the range.' }),
    prefix: Type.Integer({ minimum: 0, maximum: 128, description: 'The prefix length of the range.' }),
    address: Type.Optional(Type.String({ description: 'For an assignment: the device\'s address.' })),
    gateway: Type.Optional(Type.String({ description: 'For an assignment: the gateway.' })),
    use: StringEnum(['assignment', 'block', 'reservation'], { description: 'What the range is used for.' }),
    project: Type.Optional(Type.String({ description: 'The project (namespace) that holds it.' })),
    device: Type.Optional(
      Type.Object(
        { namespace: Type.String(), name: Type.String(), uid: Type.String() },
        { description: 'The Device it is assigned to.' },
      ),
    ),
    reservation: Type.Optional(
      Type.Object({ namespace: Type.String(), name: Type.String() }, { description: 'The IPReservation it belongs to.' }),
    ),
  },
  { description: 'IPAddressSpec describes the claim.' },
);

export type IPAddressSpec = Static<typeof IPAddressSpecSchema>;

export const ipAddressKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'IPAddress',
  plural: 'ipaddresses',
  singular: 'ipaddress',
  scope: 'Cluster',
  shortNames: ['ip'],
  categories: ['metalplane'],
  description:
    'IPAddress is the claim on one range of an IPPool: a device assignment, a project block or part of an IP ' +
    'reservation. Its name is derived from the range, so one range is never given twice.',
  schema: Type.Object({ spec: IPAddressSpecSchema }),
  printerColumns: [
    { name: 'Pool', type: 'string', jsonPath: '.spec.pool', description: 'The pool.' },
    { name: 'Use', type: 'string', jsonPath: '.spec.use', description: 'assignment, block or reservation.' },
    { name: 'Address', type: 'string', jsonPath: '.spec.address', description: 'The assigned address.' },
    { name: 'Project', type: 'string', jsonPath: '.spec.project', description: 'The project.' },
    { name: 'Device', type: 'string', jsonPath: '.spec.device.name', description: 'The device.' },
  ],
  selectableFields: ['.spec.pool', '.spec.project', '.spec.use'],
};

/** An informer index of addresses by the uid of the Device they are claimed for (the metal API and metadata use it). */
export const IPAddressDeviceUidIndex = 'spec.device.uid';
export const ipAddressDeviceUid = (o: StoredObject): string[] => {
  const uid = (o.spec as IPAddressSpec | undefined)?.device?.uid;
  return uid ? [uid] : [];
};
