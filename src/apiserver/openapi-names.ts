// Names shared by the OpenAPI schemas and operations: kube's meta/v1 definitions, a kind's schema name, references.
import type { KindDeclaration } from '../kinds/types.js';

type Json = Record<string, unknown>;

/** What kube's OpenAPI names the legacy core group (`io.k8s.api.core.v1.…`, `core_v1`, `CoreV1`). */
export const CORE_GROUP_NAME = 'core';

export const metaV1 = 'io.k8s.apimachinery.pkg.apis.meta.v1';
export const names = {
  objectMeta: `${metaV1}.ObjectMeta`,
  listMeta: `${metaV1}.ListMeta`,
  status: `${metaV1}.Status`,
  statusDetails: `${metaV1}.StatusDetails`,
  statusCause: `${metaV1}.StatusCause`,
  deleteOptions: `${metaV1}.DeleteOptions`,
  preconditions: `${metaV1}.Preconditions`,
  patch: `${metaV1}.Patch`,
  watchEvent: `${metaV1}.WatchEvent`,
};


/** The schema name of a kind: `io.k8s.api.core.v1.ConfigMap` for built-ins, `dev.metalplane.v1alpha1.Plan` else. */
export function openApiNameOf(kind: Pick<KindDeclaration, 'group' | 'version' | 'kind' | 'builtin'>): string {
  if (kind.builtin) {
    const group = kind.group ? kind.group.split('.')[0]! : CORE_GROUP_NAME;
    return `io.k8s.api.${group}.${kind.version}.${kind.kind}`;
  }
  return `${kind.group.split('.').reverse().join('.')}.${kind.version}.${kind.kind}`;
}

export const ref3 = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });

export function gvkExtension(kind: KindDeclaration, kindName = kind.kind): Json {
  return { group: kind.group, version: kind.version, kind: kindName };
}
