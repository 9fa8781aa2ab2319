// SSHKey: a public key installed on devices through the metadata service. Keys in a project's namespace are
// project keys (every device of the project gets them unless the device names its keys); `spec.owner` marks a
// user's personal key. The fingerprint is computed on every write.
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { KindDeclaration } from './types.js';
import { fieldInvalid } from './validation.js';

const KeyTypes = ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com'];

export interface SSHKeySpec {
  label?: string;
  key: string;
  owner?: string;
  tags?: string[];
}

/** Where users' personal keys (spec.owner set) live: they belong to a user, not to any project. */
export const USER_SSH_KEY_NAMESPACE = 'metalplane-system';

/** Parses an OpenSSH public key line; returns the SHA256 fingerprint (as `ssh-keygen -l` prints it) or an error. */
export function sshFingerprint(line: string): { fingerprint: string; type: string } | { error: string } {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2) return { error: 'must be an OpenSSH public key: `<type> <base64> [comment]`' };
  const [type, b64] = parts as [string, string];
  if (!KeyTypes.includes(type)) return { error: `key type ${JSON.stringify(type)} is not supported; use one of ${KeyTypes.join(', ')}` };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return { error: 'the key data is not base64' };
  const blob = Buffer.from(b64, 'base64');
  // The blob starts with the key type as an SSH string: a 4-byte length, then the name.
  const n = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (n <= 0 || 4 + n > blob.length || blob.subarray(4, 4 + n).toString() !== type) {
    return { error: `the key data does not hold a ${type} key` };
  }
  return { type, fingerprint: 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '') };
}

export const sshKeyKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'SSHKey',
  plural: 'sshkeys',
  singular: 'sshkey',
  scope: 'Namespaced',
  categories: ['metalplane'],
  description:
    'SSHKey is a public key installed on the project\'s devices through the metadata service (all of them, or ' +
    'the devices that name it in spec.sshKeys).',
  schema: Type.Object({
    spec: Type.Object(
      {
        label: Type.Optional(Type.String({ description: 'A display name, e.g. `alice@laptop`.' })),
        key: Type.String({ minLength: 1, description: 'The OpenSSH public key line, e.g. `ssh-ed25519 AAAA… alice`.' }),
        owner: Type.Optional(Type.String({ description: 'The user the key belongs to (a personal key, kept in metalplane-system); absent for a project key.' })),
        tags: Type.Optional(Type.Array(Type.String(), { description: 'Free-form tags.', 'x-kubernetes-list-type': 'set' })),
      },
      { description: 'SSHKeySpec is the key.' },
    ),
    status: Type.Optional(
      Type.Object(
        { fingerprint: Type.Optional(Type.String({ description: 'The SHA256 fingerprint, as ssh-keygen prints it.' })) },
        { description: 'SSHKeyStatus is derived from the key.' },
      ),
    ),
  }),
  printerColumns: [
    { name: 'Label', type: 'string', jsonPath: '.spec.label', description: 'The label.' },
    { name: 'Fingerprint', type: 'string', jsonPath: '.status.fingerprint', description: 'The SHA256 fingerprint.' },
    { name: 'Owner', type: 'string', jsonPath: '.spec.owner', priority: 1, description: 'The owner.' },
  ],
  validate: (obj) => {
    const spec = obj.spec as SSHKeySpec;
    const r = sshFingerprint(spec.key);
    return 'error' in r ? [fieldInvalid('spec.key', spec.key.slice(0, 40), r.error)] : [];
  },
  normalize: (obj) => {
    const spec = obj.spec as SSHKeySpec;
    const r = sshFingerprint(spec.key);
    if ('fingerprint' in r) obj.status = { ...((obj.status as object | undefined) ?? {}), fingerprint: r.fingerprint };
  },
};
