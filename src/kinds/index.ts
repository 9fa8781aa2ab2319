// Every kind metalplane serves, and the registry that finds a declaration the ways clients name it: by URL
// (group + plural), by apiVersion + kind in a body, by singular, short name or `plural.group` as typed at
// kubectl. Storage keys are derived here too, so that the API server, controllers and tests agree on them.
import { configMapKind, eventKind, leaseKind, namespaceKind, secretKind } from './core.js';
import { facilityKind } from './facility.js';
import { metroKind } from './metro.js';
import { operatingSystemKind } from './operating-system.js';
import { planKind } from './plan.js';
import { hardwareKind } from './hardware.js';
import { deviceKind } from './device.js';
import { workflowKind } from './workflow.js';
import { ipPoolKind } from './ip-pool.js';
import { ipAddressKind } from './ip-address.js';
import { ipReservationKind } from './ip-reservation.js';
import { sshKeyKind } from './ssh-key.js';
import { organizationKind } from './organization.js';
import { userKind } from './user.js';
import { apiKeyKind } from './api-key.js';
import { usageRecordKind } from './usage-record.js';
import { virtualNetworkKind } from './virtual-network.js';
import { bgpConfigKind } from './bgp-config.js';
import { bgpSessionKind } from './bgp-session.js';
import { vlanAssignmentBatchKind } from './vlan-assignment-batch.js';
import { cloudConfigKind } from './cloud-config.js';
import { apiVersionOf, type KindDeclaration, type SelectableField } from './types.js';

export const allKinds: KindDeclaration[] = [
  namespaceKind,
  configMapKind,
  secretKind,
  eventKind,
  leaseKind,
  metroKind,
  facilityKind,
  planKind,
  operatingSystemKind,
  hardwareKind,
  deviceKind,
  workflowKind,
  ipPoolKind,
  ipAddressKind,
  ipReservationKind,
  sshKeyKind,
  organizationKind,
  userKind,
  apiKeyKind,
  usageRecordKind,
  virtualNetworkKind,
  bgpConfigKind,
  bgpSessionKind,
  vlanAssignmentBatchKind,
  cloudConfigKind,
];

export interface GroupVersion {
  group: string;
  version: string;
  /** `v1` or `metalplane.dev/v1alpha1` */
  groupVersion: string;
  /** The URL path without leading slash, as in the OpenAPI v3 index: `api/v1`, `apis/metalplane.dev/v1alpha1`. */
  path: string;
}

export class KindRegistry {
  private readonly kinds: readonly KindDeclaration[];
  private readonly byPlural = new Map<string, KindDeclaration>();
  private readonly byKindName = new Map<string, KindDeclaration>();
  private readonly bySingularName = new Map<string, KindDeclaration>();
  private readonly byShort = new Map<string, KindDeclaration[]>();

  constructor(kinds: readonly KindDeclaration[] = allKinds) {
    this.kinds = [...kinds];
    for (const k of this.kinds) {
      const gv = apiVersionOf(k);
      this.add(this.byPlural, `${gv}/${k.plural}`, k, 'resource');
      this.add(this.byKindName, `${gv}/${k.kind}`, k, 'kind');
      this.add(this.bySingularName, `${gv}/${k.singular}`, k, 'singular name');
      for (const s of k.shortNames ?? []) this.byShort.set(s, [...(this.byShort.get(s) ?? []), k]);
    }
  }

  private add(map: Map<string, KindDeclaration>, key: string, k: KindDeclaration, what: string): void {
    if (map.has(key)) throw new Error(`kinds: ${what} ${key} is declared twice`);
    map.set(key, k);
  }

  /** All declarations, in declaration order. */
  all(): readonly KindDeclaration[] {
    return this.kinds;
  }

  /** By URL segments: group ('' for core), version, plural. */
  byResource(group: string, version: string, plural: string): KindDeclaration | undefined {
    return this.byPlural.get(`${apiVersionOf({ group, version })}/${plural}`);
  }

  /** By group, version and kind (`metalplane.dev`, `v1alpha1`, `Plan`). */
  byKind(group: string, version: string, kind: string): KindDeclaration | undefined {
    return this.byKindName.get(`${apiVersionOf({ group, version })}/${kind}`);
  }

  /** By a body's `apiVersion` and `kind`. */
  byApiVersionKind(apiVersion: string, kind: string): KindDeclaration | undefined {
    return this.byKindName.get(`${apiVersion}/${kind}`);
  }

  bySingular(group: string, version: string, singular: string): KindDeclaration | undefined {
    return this.bySingularName.get(`${apiVersionOf({ group, version })}/${singular}`);
  }

  byShortName(shortName: string): KindDeclaration[] {
    return this.byShort.get(shortName) ?? [];
  }

  /**
   * What a user typed as a resource, the way kubectl resolves it: `plans`, `plan`, `Plan`, a short name (`os`),
   * `plans.metalplane.dev`, `plan.metalplane.dev` or `plans.v1alpha1.metalplane.dev`. Case-insensitive.
   * Returns every match (more than one only if two groups serve the same name).
   */
  resolve(resource: string): KindDeclaration[] {
    const arg = resource.toLowerCase();
    const names = (k: KindDeclaration): string[] => [k.plural, k.singular, k.kind.toLowerCase(), ...(k.shortNames ?? [])];
    const out = new Set<KindDeclaration>();
    for (const k of this.kinds) {
      for (const n of names(k)) {
        if (arg === n && (k.group === '' || !this.kinds.some((c) => c.group === '' && names(c).includes(arg)))) out.add(k);
        if (k.group && (arg === `${n}.${k.group}` || arg === `${n}.${k.version}.${k.group}`)) out.add(k);
        if (!k.group && arg === `${n}.${k.version}`) out.add(k);
      }
    }
    return [...out];
  }

  /** The group-versions served, core first, then groups in declaration order. */
  groupVersions(): GroupVersion[] {
    const seen = new Map<string, GroupVersion>();
    for (const k of this.kinds) {
      const groupVersion = apiVersionOf(k);
      if (seen.has(groupVersion)) continue;
      seen.set(groupVersion, {
        group: k.group,
        version: k.version,
        groupVersion,
        path: k.group ? `apis/${k.group}/${k.version}` : `api/${k.version}`,
      });
    }
    return [...seen.values()].sort((a, b) => Number(a.group !== '') - Number(b.group !== ''));
  }

  /** The kinds of one group-version. */
  kindsIn(group: string, version: string): KindDeclaration[] {
    return this.kinds.filter((k) => k.group === group && k.version === version);
  }
}

/**
 * The selectable fields of a kind as `{ name, jsonPath }`: metadata.name and metadata.namespace (empty for
 * cluster-scoped kinds, as kube has it), then the kind's own.
 */
export function selectableFieldsOf(kind: KindDeclaration): SelectableField[] {
  const fields: SelectableField[] = [
    { name: 'metadata.name', jsonPath: '.metadata.name' },
    { name: 'metadata.namespace', jsonPath: '.metadata.namespace' },
  ];
  for (const f of kind.selectableFields ?? []) {
    fields.push(typeof f === 'string' ? { name: f.replace(/^\./, ''), jsonPath: f.startsWith('.') ? f : `.${f}` } : f);
  }
  return fields;
}

function groupSegment(kind: Pick<KindDeclaration, 'group'>): string {
  return kind.group || 'core';
}

/** Every object of every kind is stored under this prefix. */
export const STORE_KEY_PREFIX = '/registry/';

/**
 * The store key of one object: `/registry/<group|core>/<plural>/<namespace>/<name>` for namespaced kinds,
 * `/registry/<group|core>/<plural>/<name>` for cluster-scoped ones.
 */
export function keyFor(kind: Pick<KindDeclaration, 'group' | 'plural' | 'scope'>, namespace: string | undefined, name: string): string {
  if (kind.scope === 'Namespaced') {
    if (!namespace) throw new Error(`keyFor: ${kind.plural} are namespaced; a namespace is required`);
    return `${STORE_KEY_PREFIX}${groupSegment(kind)}/${kind.plural}/${namespace}/${name}`;
  }
  return `${STORE_KEY_PREFIX}${groupSegment(kind)}/${kind.plural}/${name}`;
}

/**
 * The key prefix to list: every object of the kind (no namespace, or a cluster-scoped kind), or those of one
 * namespace. Ends with `/`, so that `plans` never matches `plansets`.
 */
export function prefixFor(kind: Pick<KindDeclaration, 'group' | 'plural' | 'scope'>, namespace?: string): string {
  const base = `${STORE_KEY_PREFIX}${groupSegment(kind)}/${kind.plural}/`;
  return kind.scope === 'Namespaced' && namespace ? `${base}${namespace}/` : base;
}

/** The inverse of `keyFor`: namespace and name of a key under `prefixFor(kind)`. */
export function parseKey(
  kind: Pick<KindDeclaration, 'group' | 'plural' | 'scope'>,
  key: string,
): { namespace?: string; name: string } | undefined {
  const base = prefixFor(kind);
  if (!key.startsWith(base)) return undefined;
  const rest = key.slice(base.length).split('/');
  if (kind.scope === 'Namespaced') return rest.length === 2 ? { namespace: rest[0]!, name: rest[1]! } : undefined;
  return rest.length === 1 ? { name: rest[0]! } : undefined;
}

export { configMapKind, eventKind, leaseKind, namespaceKind, secretKind } from './core.js';
export { facilityKind } from './facility.js';
export { metroKind } from './metro.js';
export { operatingSystemKind } from './operating-system.js';
export { planKind } from './plan.js';
