// APIKey: a Metal API token (`X-Auth-Token`) of a user (reaches what the user reaches) or of a project (reaches
// only that project), optionally read-only. Only the token's SHA-256 is stored; the token itself is shown once,
// when the key is created. The object's name is derived from the hash, so authenticating is one point read.
import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { KindDeclaration } from './types.js';
import { fieldForbidden, fieldRequired } from './validation.js';

const APIKeySpecSchema = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1000, description: 'What the key is for.' })),
    readOnly: Type.Optional(Type.Boolean({ description: 'The key reads but never writes.' })),
    user: Type.Optional(Type.String({ description: 'The User whose key this is (a user key).' })),
    project: Type.Optional(Type.String({ description: 'The project (namespace) this key is limited to (a project key).' })),
    tokenHash: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the token, hex. The token is never stored.' }),
  },
  { description: 'APIKeySpec says whose key it is and what it may do.' },
);
export type APIKeySpec = Static<typeof APIKeySpecSchema>;

/** Hex SHA-256 of a token. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The APIKey object name for a token hash: a point read finds the key of a token. */
export function apiKeyName(hash: string): string {
  return `key-${hash.slice(0, 40)}`;
}

export const apiKeyKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'APIKey',
  plural: 'apikeys',
  singular: 'apikey',
  scope: 'Cluster',
  categories: ['metalplane'],
  description: 'APIKey is a Metal API token of a user or of a project, stored as its hash.',
  schema: Type.Object({ spec: APIKeySpecSchema }),
  printerColumns: [
    { name: 'User', type: 'string', jsonPath: '.spec.user', description: 'The owner (user keys).' },
    { name: 'Project', type: 'string', jsonPath: '.spec.project', description: 'The project (project keys).' },
    { name: 'Read Only', type: 'boolean', jsonPath: '.spec.readOnly', description: 'Never writes.' },
    { name: 'Description', type: 'string', jsonPath: '.spec.description', priority: 1, description: 'What it is for.' },
  ],
  validate: (obj, old) => {
    const spec = obj.spec as APIKeySpec;
    const causes = [];
    if (!spec.user && !spec.project) causes.push(fieldRequired('spec.user', 'a key belongs to a user (spec.user) or to a project (spec.project)'));
    if (spec.user && spec.project) causes.push(fieldForbidden('spec.project', 'a key belongs to a user or to a project, not both'));
    if (obj.metadata.name !== apiKeyName(spec.tokenHash)) causes.push(fieldForbidden('metadata.name', `must be ${apiKeyName(spec.tokenHash)} (derived from spec.tokenHash)`));
    const was = old?.spec as APIKeySpec | undefined;
    if (was && (was.tokenHash !== spec.tokenHash || was.user !== spec.user || was.project !== spec.project)) {
      causes.push(fieldForbidden('spec', 'tokenHash, user and project are immutable'));
    }
    return causes;
  },
};
