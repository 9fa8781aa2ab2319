// Metro: a metropolitan area (Equinix Metal's word) that groups facilities, e.g. `da` → Dallas. Devices are
// requested in a metro and scheduled onto hardware in one of its facilities. Cluster-scoped catalog data.
import { Type } from '@sinclair/typebox';
import { Conditions } from './common.js';
import type { KindDeclaration } from './types.js';
import { fieldInvalid } from './validation.js';

export const metroKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'Metro',
  plural: 'metros',
  singular: 'metro',
  scope: 'Cluster',
  categories: ['metalplane', 'catalog'],
  statusSubresource: true,
  description:
    'Metro is a metropolitan area that groups facilities, e.g. `da` (Dallas). Devices are requested in a metro ' +
    'and placed on hardware in one of its facilities. The object name is the metro code.',
  schema: Type.Object({
    spec: Type.Object(
      {
        code: Type.String({
          pattern: '^[a-z]{2,3}$',
          description: 'The metro code, two or three lower-case letters (e.g. `da`, `ny`, `sv`); equals metadata.name.',
        }),
        name: Type.String({ description: 'The human name of the metro, e.g. `Dallas`.' }),
        country: Type.String({
          pattern: '^[A-Z]{2}$',
          description: 'The ISO 3166-1 alpha-2 code of the country the metro is in, e.g. `US`.',
        }),
      },
      { description: 'MetroSpec describes the metro.' },
    ),
    status: Type.Optional(
      Type.Object(
        {
          observedGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The metadata.generation last reconciled.' })),
          facilities: Type.Optional(
            Type.Array(Type.String(), { description: 'Codes of the facilities in this metro, e.g. `da11`, `da6`.' }),
          ),
          conditions: Type.Optional(Conditions()),
        },
        { description: 'MetroStatus is what the controllers observed about the metro.' },
      ),
    ),
  }),
  printerColumns: [
    { name: 'Code', type: 'string', jsonPath: '.spec.code', description: 'The metro code.' },
    { name: 'Display Name', type: 'string', jsonPath: '.spec.name', description: 'The metro name, e.g. Dallas.' },
    { name: 'Country', type: 'string', jsonPath: '.spec.country', description: 'ISO 3166-1 country code.' },
  ],
  selectableFields: ['.spec.code', '.spec.country'],
  validate: (obj) => {
    const spec = obj.spec as { code?: string };
    if (spec.code && obj.metadata.name && spec.code !== obj.metadata.name) {
      return [fieldInvalid('spec.code', spec.code, `must equal metadata.name (${JSON.stringify(obj.metadata.name)})`)];
    }
    return [];
  },
};
