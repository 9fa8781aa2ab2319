// BGPSession: a device's BGP session with the network, one per address family. The name is
// `<device>-<ipv4|ipv6>`, so a second session of the same family cannot be stored even when two requests race;
// the Metal API turns that into the original's 422 "already has session" that Cluster API's provider and the
// cloud controller manager look for. Owned by its Device (deleted with it); the network controller configures
// the peer on the switch.
import { Type } from '@sinclair/typebox';
import { StringEnum } from './common.js';
import type { KindDeclaration } from './types.js';
import { fieldInvalid } from './validation.js';

export const AddressFamilies = ['ipv4', 'ipv6'] as const;
export type AddressFamily = (typeof AddressFamilies)[number];

export interface BGPSessionSpec {
  device: string;
  addressFamily: AddressFamily;
  defaultRoute?: boolean;
}

export function bgpSessionName(device: string, family: AddressFamily): string {
  return `${device}-${family}`;
}

export const bgpSessionKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'BGPSession',
  plural: 'bgpsessions',
  singular: 'bgpsession',
  scope: 'Namespaced',
  categories: ['metalplane'],
  description:
    'BGPSession is a device\'s BGP session with the network, one per address family, named `<device>-<family>`. ' +
    'The project needs a BGPConfig first.',
  schema: Type.Object({
    spec: Type.Object(
      {
        device: Type.String({ minLength: 1, description: 'The Device (of this namespace).' }),
        addressFamily: StringEnum(AddressFamilies, { description: 'ipv4 or ipv6.' }),
        defaultRoute: Type.Optional(Type.Boolean({ default: false, description: 'The network announces a default route to the device.' })),
      },
      { description: 'BGPSessionSpec is the session.' },
    ),
  }),
  printerColumns: [
    { name: 'Device', type: 'string', jsonPath: '.spec.device', description: 'The device.' },
    { name: 'Family', type: 'string', jsonPath: '.spec.addressFamily', description: 'ipv4 or ipv6.' },
    { name: 'Default Route', type: 'boolean', jsonPath: '.spec.defaultRoute', description: 'A default route is announced.' },
  ],
  selectableFields: ['.spec.device'],
  validate: (obj, old) => {
    const spec = obj.spec as BGPSessionSpec;
    const causes = [];
    const want = bgpSessionName(spec.device, spec.addressFamily);
    if (obj.metadata.name !== undefined && obj.metadata.name !== want) {
      causes.push(fieldInvalid('metadata.name', obj.metadata.name, `must be ${JSON.stringify(want)} (<device>-<family>): a device has one session per address family`));
    }
    if (old) {
      const before = old.spec as BGPSessionSpec;
      if (before.device !== spec.device) causes.push(fieldInvalid('spec.device', spec.device, 'is immutable'));
      if (before.addressFamily !== spec.addressFamily) causes.push(fieldInvalid('spec.addressFamily', spec.addressFamily, 'is immutable'));
    }
    return causes;
  },
};
