// BGPConfig: a project's BGP (Equinix Metal's "bgp config"): local (a private ASN, routes stay in the metro) or
// global (the customer's own ASN and IP space), with an optional MD5 password shared with the peers. One per
// project, named `default`. Devices open sessions (BGPSession) once it exists; the network controller configures
// the peers on the switch.
import { Type } from '@sinclair/typebox';
import { StringEnum } from './common.js';
import type { KindDeclaration } from './types.js';
import { fieldInvalid } from './validation.js';

export const BGP_CONFIG_NAME = 'default';
/** The ASN of metalplane's side of every session (the original's peer ASN). */
export const PEER_ASN = 65530;
export const DeploymentTypes = ['local', 'global'] as const;

export interface BGPConfigSpec {
  deploymentType: (typeof DeploymentTypes)[number];
  asn: number;
  md5?: string;
  maxPrefix?: number;
  useCase?: string;
  routeObject?: string;
}

/** Why an ASN cannot be a customer's, or undefined. */
export function asnProblem(asn: number): string | undefined {
  if (!Number.isInteger(asn) || asn < 1 || asn > 4294967294) return 'must be an ASN from 1 to 4294967294';
  if (asn === 23456) return '23456 is AS_TRANS (RFC 6793), not an ASN a network may use';
  if (asn === 65535 || (asn >= 64496 && asn <= 64511) || (asn >= 65536 && asn <= 65551)) return `${asn} is reserved for documentation or by IANA`;
  if (asn === PEER_ASN) return `${PEER_ASN} is the ASN of metalplane's own side of every session; use another, e.g. 65000`;
  return undefined;
}

/** The MD5 password rule of the original: 10–20 letters and digits, with a lower-case, an upper-case letter and a digit. */
export function md5Problem(md5: string): string | undefined {
  return /^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)[a-zA-Z\d]{10,20}$/.test(md5)
    ? undefined
    : 'must be 10–20 letters and digits, with at least one lower-case letter, one upper-case letter and one digit';
}

export const bgpConfigKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'BGPConfig',
  plural: 'bgpconfigs',
  singular: 'bgpconfig',
  scope: 'Namespaced',
  categories: ['metalplane'],
  description:
    'BGPConfig enables BGP for the project (one per project, named `default`): local or global, the customer ASN ' +
    'and an optional MD5 password. Devices then open BGP sessions.',
  schema: Type.Object({
    spec: Type.Object(
      {
        deploymentType: StringEnum(DeploymentTypes, { description: 'local: a private ASN, routes stay in the metro; global: your own ASN and IP space.' }),
        asn: Type.Integer({ minimum: 0, maximum: 4294967295, description: 'The customer\'s ASN, e.g. 65000 for local BGP.' }),
        md5: Type.Optional(Type.String({ description: 'The plaintext password the peers share (10–20 letters and digits).' })),
        maxPrefix: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'Route filters allowed per server.' })),
        useCase: Type.Optional(Type.String({ maxLength: 1024, description: 'What it is for (the original reviewed global requests by it).' })),
        routeObject: Type.Optional(Type.String({ description: 'The AS-SET used to build route filters.' })),
      },
      { description: 'BGPConfigSpec is the project\'s BGP.' },
    ),
  }),
  printerColumns: [
    { name: 'Type', type: 'string', jsonPath: '.spec.deploymentType', description: 'local or global.' },
    { name: 'ASN', type: 'integer', jsonPath: '.spec.asn', description: 'The customer ASN.' },
  ],
  validate: (obj) => {
    const spec = obj.spec as BGPConfigSpec;
    const causes = [];
    if (obj.metadata.name !== undefined && obj.metadata.name !== BGP_CONFIG_NAME) {
      causes.push(fieldInvalid('metadata.name', obj.metadata.name, `must be ${JSON.stringify(BGP_CONFIG_NAME)}: a project has one BGP config`));
    }
    const asn = asnProblem(spec.asn);
    if (asn) causes.push(fieldInvalid('spec.asn', spec.asn, asn));
    if (spec.md5 !== undefined) {
      const md5 = md5Problem(spec.md5);
      if (md5) causes.push(fieldInvalid('spec.md5', '(omitted)', md5));
    }
    return causes;
  },
};
