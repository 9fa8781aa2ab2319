// API discovery, derived from the kind declarations: the legacy documents (/api, /apis, /apis/{g}, /…/{v})
// and the aggregated format (apidiscovery.k8s.io/v2 and v2beta1) that kubectl 1.32 asks for first.
import type { KindDeclaration } from '../kinds/types.js';
import type { KindRegistry } from '../kinds/index.js';

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

interface GroupVersionKinds {
  group: string;
  version: string;
  kinds: KindDeclaration[];
}

function groupVersions(reg: KindRegistry): GroupVersionKinds[] {
  return reg.groupVersions().map((gv) => ({ group: gv.group, version: gv.version, kinds: reg.kindsIn(gv.group, gv.version) }));
}

function verbsOf(k: KindDeclaration): string[] {
  return k.verbs ?? ALL_VERBS;
}

export function apiVersions(serverAddress: string): object {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function apiGroup(gvs: GroupVersionKinds[], group: string): object {
  const versions = gvs.filter((g) => g.group === group).map((g) => ({ groupVersion: `${group}/${g.version}`, version: g.version }));
  return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions, preferredVersion: versions[0] };
}

export function apiGroupList(reg: KindRegistry): object {
  const gvs = groupVersions(reg).filter((g) => g.group !== '');
  const groups = [...new Set(gvs.map((g) => g.group))].map((group) => {
    const { kind: _k, apiVersion: _a, ...rest } = apiGroup(gvs, group) as Record<string, unknown>;
    return rest;
  });
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

export function apiGroupDoc(reg: KindRegistry, group: string): object | undefined {
  const gvs = groupVersions(reg);
  if (!gvs.some((g) => g.group === group)) return undefined;
  return apiGroup(gvs, group);
}

export function apiResourceList(reg: KindRegistry, group: string, version: string): object | undefined {
  const kinds = reg.kindsIn(group, version);
  if (kinds.length === 0) return undefined;
  const resources: object[] = [];
  for (const k of kinds) {
    resources.push({
      name: k.plural,
      singularName: k.singular,
      namespaced: k.scope === 'Namespaced',
      kind: k.kind,
      verbs: verbsOf(k),
      ...(k.shortNames?.length ? { shortNames: k.shortNames } : {}),
      ...(k.categories?.length ? { categories: k.categories } : {}),
    });
    if (k.statusSubresource) {
      resources.push({ name: `${k.plural}/status`, singularName: '', namespaced: k.scope === 'Namespaced', kind: k.kind, verbs: ['get', 'patch', 'update'] });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

/** The aggregated discovery document for either the legacy group (/api) or the named groups (/apis). */
export function aggregatedDiscovery(reg: KindRegistry, legacy: boolean, apiVersion: 'apidiscovery.k8s.io/v2' | 'apidiscovery.k8s.io/v2beta1'): object {
  const gvs = groupVersions(reg).filter((g) => (legacy ? g.group === '' : g.group !== ''));
  const groups = new Map<string, object[]>();
  for (const gv of gvs) {
    const resources = gv.kinds.map((k) => ({
      resource: k.plural,
      responseKind: { group: k.group, version: k.version, kind: k.kind },
      scope: k.scope,
      singularResource: k.singular,
      verbs: verbsOf(k),
      ...(k.shortNames?.length ? { shortNames: k.shortNames } : {}),
      ...(k.categories?.length ? { categories: k.categories } : {}),
      ...(k.statusSubresource
        ? { subresources: [{ subresource: 'status', responseKind: { group: k.group, version: k.version, kind: k.kind }, verbs: ['get', 'patch', 'update'] }] }
        : {}),
    }));
    const list = groups.get(gv.group) ?? [];
    list.push({ version: gv.version, resources, freshness: 'Current' });
    groups.set(gv.group, list);
  }
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion,
    metadata: {},
    items: [...groups.entries()].map(([name, versions]) => ({ metadata: name ? { name } : {}, versions })),
  };
}

/** Which aggregated discovery version the Accept header asks for, if any. */
export function wantsAggregated(accept: string | undefined): 'apidiscovery.k8s.io/v2' | 'apidiscovery.k8s.io/v2beta1' | undefined {
  if (!accept || !accept.includes('as=APIGroupDiscoveryList')) return undefined;
  for (const part of accept.split(',')) {
    const p = part.replace(/\s+/g, '');
    if (!p.includes('as=APIGroupDiscoveryList') || !p.includes('g=apidiscovery.k8s.io')) continue;
    if (p.includes('v=v2beta1')) return 'apidiscovery.k8s.io/v2beta1';
    if (p.includes('v=v2')) return 'apidiscovery.k8s.io/v2';
  }
  return undefined;
}
