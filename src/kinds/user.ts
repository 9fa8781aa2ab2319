// User: a person (or robot) who calls the Metal API with an API key. The default user, `admin`, is the one the
// admin token acts as. Users are members of organizations and see those organizations' projects.
import { Type, type Static } from '@sinclair/typebox';
import type { KindDeclaration } from './types.js';

export const DEFAULT_USER = 'admin';

const UserSpecSchema = Type.Object(
  {
    email: Type.Optional(Type.String({ maxLength: 320, description: 'The e-mail address.' })),
    firstName: Type.Optional(Type.String({ maxLength: 256, description: 'First name.' })),
    lastName: Type.Optional(Type.String({ maxLength: 256, description: 'Last name.' })),
    organizations: Type.Array(Type.String({ minLength: 1 }), { description: 'The Organization objects the user is a member of.', 'x-kubernetes-list-type': 'set' }),
    admin: Type.Optional(Type.Boolean({ description: 'Sees and manages every organization and project.' })),
  },
  { description: 'UserSpec describes the user and their memberships.' },
);
export type UserSpec = Static<typeof UserSpecSchema>;

export const userKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'User',
  plural: 'users',
  singular: 'user',
  scope: 'Cluster',
  categories: ['metalplane'],
  description: 'User is a caller of the Metal API: a member of organizations, authenticated by its API keys.',
  schema: Type.Object({ spec: UserSpecSchema }),
  printerColumns: [
    { name: 'Email', type: 'string', jsonPath: '.spec.email', description: 'The e-mail address.' },
    { name: 'Admin', type: 'boolean', jsonPath: '.spec.admin', description: 'Sees every project.' },
  ],
};
