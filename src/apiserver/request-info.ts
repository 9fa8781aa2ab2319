// Parses a kube API URL path into what it addresses, the way kube-apiserver's RequestInfoFactory does:
//   /api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]
//   /apis/{group}/{version}[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]
// plus the discovery paths /api, /api/v1, /apis, /apis/{group}, /apis/{group}/{version}.
import { ApiError } from '../lib/errors.js';
import type { KindDeclaration } from '../kinds/types.js';

export type RequestInfo =
  | { type: 'discovery'; group?: string; version?: string; legacy: boolean }
  | {
      type: 'resource';
      group: string;
      version: string;
      resource: string;
      namespace?: string;
      name?: string;
      subresource?: string;
    };

/**
 * How the namespace kind is addressed: `/namespaces/{ns}/{resource}` is a namespaced resource unless the
 * segment after the name is one of the namespace kind's own subresources (`/namespaces/{name}/finalize`).
 */
export interface NamespacePaths {
  /** The namespace kind's plural (`namespaces`) and group (the core group: ''). */
  resource: string;
  group: string;
  subresources: ReadonlySet<string>;
}

/** The NamespacePaths of the kind declared `isNamespace`, if any. */
export function namespacePathsOf(kinds: readonly KindDeclaration[]): NamespacePaths | undefined {
  const k = kinds.find((d) => d.isNamespace);
  if (!k) return undefined;
  const subresources = new Set(Object.keys(k.subresources ?? {}));
  if (k.statusSubresource) subresources.add('status');
  return { resource: k.plural, group: k.group, subresources };
}

export function parseRequestPath(path: string, namespaces?: NamespacePaths): RequestInfo {
  const q = path.indexOf('?');
  const clean = q >= 0 ? path.slice(0, q) : path;
  const parts = clean.split('/').filter((p) => p !== '');
  for (const p of parts) {
    if (p === '.' || p === '..') throw ApiError.badRequest(`invalid path ${clean}: "." and ".." segments are not allowed`);
  }
  let rest: string[];
  let group: string;
  let version: string;
  if (parts[0] === 'api') {
    if (parts.length === 1) return { type: 'discovery', legacy: true };
    group = '';
    version = parts[1];
    if (parts.length === 2) return { type: 'discovery', legacy: true, group: '', version };
    rest = parts.slice(2);
  } else if (parts[0] === 'apis') {
    if (parts.length === 1) return { type: 'discovery', legacy: false };
    group = parts[1];
    if (parts.length === 2) return { type: 'discovery', legacy: false, group };
    version = parts[2];
    if (parts.length === 3) return { type: 'discovery', legacy: false, group, version };
    rest = parts.slice(3);
  } else {
    throw ApiError.notFound('path', clean);
  }
  rest = rest.map(decodeSegment);
  // /namespaces/{ns}/{resource}... addresses a namespaced resource; /namespaces and /namespaces/{ns}[/status|finalize]
  // address the Namespace kind itself.
  const nsResource = namespaces?.resource ?? 'namespaces';
  const isNamespaceSubresource = namespaces !== undefined && group === namespaces.group && rest.length === 3 && namespaces.subresources.has(rest[2]!);
  if (rest[0] === nsResource && rest.length >= 3 && !isNamespaceSubresource) {
    const [, namespace, resource, name, subresource, ...extra] = rest;
    if (extra.length) throw ApiError.notFound('path', clean);
    return { type: 'resource', group, version, resource, namespace, name, subresource };
  }
  const [resource, name, subresource, ...extra] = rest;
  if (extra.length) throw ApiError.notFound('path', clean);
  return { type: 'resource', group, version, resource, name, subresource };
}

function decodeSegment(s: string): string {
  // Without a `%` there is nothing to decode (decodeURIComponent would return the segment as it is).
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    throw ApiError.badRequest(`invalid path segment "${s}": bad percent-encoding`);
  }
}
