// Facility: one datacenter (an Equinix IBX in Equinix Metal's catalog, e.g. `da11`) inside a metro. Hardware is
// racked in a facility. Cluster-scoped catalog data.
import { Type } from '@sinclair/typebox';
import { Conditions, StringEnum } from './common.js';
import type { KindDeclaration } from './types.js';
import { fieldInvalid } from './validation.js';

export const facilityFeatures = ['baremetal', 'backend_transfer', 'layer_2', 'global_ipv4', 'ibx'] as const;

export const facilityKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'Facility',
  plural: 'facilities',
  singular: 'facility',
  scope: 'Cluster',
  shortNames: ['fac'],
  categories: ['metalplane', 'catalog'],
  statusSubresource: true,
  description:
    'Facility is one datacenter inside a metro, e.g. `da11` in metro `da`. Hardware is racked in a facility. ' +
    'The object name is the facility code.',
  schema: Type.Object({
    spec: Type.Object(
      {
        code: Type.String({
          pattern: '^[a-z]{2,3}[0-9]{1,3}$',
          description: 'The facility code: the metro code and a number (e.g. `da11`); equals metadata.name.',
        }),
        metro: Type.String({ description: 'The code of the metro the facility is in (a Metro name), e.g. `da`.' }),
        name: Type.String({ description: 'The human name of the facility, e.g. `Dallas DA11`.' }),
        address: Type.Optional(
          Type.Object(
            {
              address: Type.Optional(Type.String({ description: 'Street address, first line.' })),
              address2: Type.Optional(Type.String({ description: 'Street address, second line.' })),
              city: Type.Optional(Type.String({ description: 'City.' })),
              state: Type.Optional(Type.String({ description: 'State, province or region.' })),
              zipCode: Type.Optional(Type.String({ description: 'Postal code.' })),
              country: Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2 country code, e.g. `US`.' }),
              coordinates: Type.Optional(
                Type.Object(
                  {
                    latitude: Type.String({ description: 'Latitude in decimal degrees, e.g. `32.7767`.' }),
                    longitude: Type.String({ description: 'Longitude in decimal degrees, e.g. `-96.7970`.' }),
                  },
                  { description: 'Geographic coordinates of the facility.' },
                ),
              ),
            },
            { description: 'The postal address of the facility.' },
          ),
        ),
        features: Type.Optional(
          Type.Array(StringEnum(facilityFeatures), {
            description:
              'What the facility offers: baremetal (servers can be deployed), backend_transfer, layer_2 ' +
              '(VLANs), global_ipv4 (global anycast IPs), ibx (an Equinix IBX).',
            uniqueItems: true,
          }),
        ),
        ipRanges: Type.Optional(
          Type.Array(Type.String(), {
            description: 'IP ranges registered in the facility (CIDRs), usable for GeoIP location.',
          }),
        ),
      },
      { description: 'FacilitySpec describes the facility.' },
    ),
    status: Type.Optional(
      Type.Object(
        {
          observedGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The metadata.generation last reconciled.' })),
          hardware: Type.Optional(
            Type.Object(
              {
                total: Type.Optional(Type.Integer({ description: 'Machines racked in the facility.' })),
                available: Type.Optional(Type.Integer({ description: 'Machines ready to be provisioned.' })),
              },
              { description: 'Counts of the hardware in the facility.' },
            ),
          ),
          conditions: Type.Optional(Conditions()),
        },
        { description: 'FacilityStatus is what the controllers observed about the facility.' },
      ),
    ),
  }),
  printerColumns: [
    { name: 'Metro', type: 'string', jsonPath: '.spec.metro', description: 'The metro code.' },
    { name: 'Display Name', type: 'string', jsonPath: '.spec.name', description: 'The facility name, e.g. Dallas DA11.' },
    { name: 'Features', type: 'string', jsonPath: '.spec.features', priority: 1, description: 'What the facility offers.' },
  ],
  selectableFields: ['.spec.metro', '.spec.code'],
  validate: (obj) => {
    const spec = obj.spec as { code?: string };
    if (spec.code && obj.metadata.name && spec.code !== obj.metadata.name) {
      return [fieldInvalid('spec.code', spec.code, `must equal metadata.name (${JSON.stringify(obj.metadata.name)})`)];
    }
    return [];
  },
};
