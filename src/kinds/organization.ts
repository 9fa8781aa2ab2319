// Organization: who owns projects and whose members may use them (the Metal API's organization). Projects are
// namespaces labelled with their organization; a user belongs to organizations. One organization, `default`,
// always exists.
import { Type, type Static } from '@sinclair/typebox';
import type { KindDeclaration } from './types.js';

export const DEFAULT_ORGANIZATION = 'default';
/** The label on a project's namespace that names its organization (absent: the default organization). */
export const ORGANIZATION_LABEL = 'metalplane.dev/organization';

const OrganizationSpecSchema = Type.Object(
  {
    displayName: Type.String({ minLength: 1, maxLength: 256, description: 'The name as users typed it (any text).' }),
    description: Type.Optional(Type.String({ maxLength: 2000, description: 'A description.' })),
    website: Type.Optional(Type.String({ maxLength: 2000, description: 'The organization\'s web site.' })),
    twitter: Type.Optional(Type.String({ maxLength: 256, description: 'A Twitter handle.' })),
  },
  { description: 'OrganizationSpec names and describes the organization.' },
);
export type OrganizationSpec = Static<typeof OrganizationSpecSchema>;

export const organizationKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'Organization',
  plural: 'organizations',
  singular: 'organization',
  scope: 'Cluster',
  shortNames: ['org'],
  categories: ['metalplane'],
  description: 'Organization owns projects (namespaces labelled metalplane.dev/organization) and has users as members.',
  schema: Type.Object({ spec: OrganizationSpecSchema }),
  printerColumns: [{ name: 'Display Name', type: 'string', jsonPath: '.spec.displayName', description: 'The name as users typed it.' }],
};
