// The shape of a kind's single declaration. Every surface is derived from it: validation, OpenAPI v2/v3
// (so `kubectl explain` works), discovery, Table output for `kubectl get`, field selectors, storage keys
// and (later) the Metal API mapping.
import type { TSchema } from '@sinclair/typebox';
import type { ProtobufMessage } from './protobuf-wire.js';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time?: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, unknown>;
  subresource?: string;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  managedFields?: ManagedFieldsEntry[];
}

/** Any object of any kind, as it travels through the API. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** A stored object: metadata fields the server owns are always set. */
export interface StoredObject extends KubeObject {
  metadata: ObjectMeta & { name: string; uid: string; resourceVersion: string; creationTimestamp: string };
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/** One cell of a Table row: what kubectl prints (`null` prints as `<none>`). */
export type TableCell = string | number | boolean | null;

export interface PrinterColumn {
  name: string;
  /** OpenAPI type of the cell: string, integer, number, boolean, date */
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  /** A simple JSONPath such as `.spec.plan` or `.status.conditions[?(@.type=="Ready")].status` */
  jsonPath: string;
  description?: string;
  /** 0 = shown by default; >0 = only with `-o wide` */
  priority?: number;
  format?: string;
  /**
   * Computes the cell instead of evaluating `jsonPath` (which then only documents where the value comes from),
   * for columns kubectl shows for built-in kinds that no single JSONPath gives (ConfigMap DATA, Event OBJECT).
   * `now` is epoch milliseconds, for ages.
   */
  value?: (obj: KubeObject, now: number) => TableCell;
}

/** A field usable in a field selector, when its name is not its own JSONPath (Event `source` → `.source.component`). */
export interface SelectableField {
  /** The name used in `fieldSelector`, e.g. `source` or `spec.plan`. */
  name: string;
  /** Where the value is, e.g. `.source.component`. */
  jsonPath: string;
}

export interface FieldCauseLike {
  field: string;
  message: string;
  reason?: string;
}

/**
 * A subresource of a kind beyond `status`: what a write to `…/<name>/<subresource>` may change. Namespace's
 * `finalize` is the example: only it can change `spec.finalizers`, and the namespace controller uses it.
 */
export interface SubresourceRule {
  /** What the write stores: the current object with the parts this subresource owns taken from the request. */
  merge(request: KubeObject, current: StoredObject): KubeObject;
}

/** Which write reaches `prepareForUpdate`: the main resource (undefined) or a named subresource. */
export type Subresource = 'status' | (string & {});

/**
 * A kind's rules for the generic registry, in the shape of Kubernetes' per-kind `strategy.go`. The registry
 * applies what holds for every kind (server-owned metadata, status-subresource rules, generation, finalizers,
 * deletion) and calls these hooks where a kind has more to say; shared code never tests a kind's name.
 */
export interface KindStrategy {
  /**
   * On create, after schema validation and defaulting, before storing: what the kind sets itself
   * (Namespace: its `kubernetes` finalizer, phase Active and the `kubernetes.io/metadata.name` label).
   */
  prepareForCreate?(obj: KubeObject): void;
  /**
   * On every update — the main resource or a subresource, after the generic rules — given the object about to be
   * stored and the current one: put back what this write may not change (Namespace: a main-resource write keeps
   * `spec.finalizers`). Runs before validation, so what it leaves is validated.
   */
  prepareForUpdate?(next: KubeObject, current: StoredObject, subresource: Subresource | undefined): void;
  /** Finalizers outside `metadata.finalizers` that also hold a deletion (Namespace: `spec.finalizers`). */
  pendingFinalizers?(obj: KubeObject): readonly string[];
  /** When a delete starts waiting for finalizers: how the object shows it (Namespace: phase Terminating). */
  prepareForDelete?(obj: KubeObject): void;
  /**
   * May this object be created in a namespace that is being deleted? (default: no, as kube's NamespaceLifecycle
   * admission has it). Only for objects the namespace's own clean-up needs.
   */
  allowCreateInTerminatingNamespace?(obj: KubeObject): boolean;
}

export interface KindDeclaration {
  /** API group; '' for the core group. */
  group: string;
  version: string;
  kind: string;
  /** Lower-case plural resource name, e.g. `plans`. */
  plural: string;
  /** Lower-case singular, e.g. `plan`. */
  singular: string;
  scope: 'Namespaced' | 'Cluster';
  shortNames?: string[];
  categories?: string[];
  /** One-line description for discovery/explain. */
  description: string;
  /**
   * The schema of the whole object minus apiVersion/kind/metadata (those are common): e.g.
   * `{ spec, status }` for most kinds, `{ data, binaryData, immutable }` for ConfigMap.
   */
  schema: TSchema;
  /**
   * True if the kind has a `status` subresource: status changes only through it, writes to the main resource
   * leave status as it was, and spec changes bump generation.
   */
  statusSubresource?: boolean;
  /** Subresources besides `status`, by name (Namespace: `finalize`). */
  subresources?: Record<string, SubresourceRule>;
  /** The kind's rules beyond what holds for every kind (see KindStrategy). */
  strategy?: KindStrategy;
  /**
   * Objects of this kind are the namespaces that namespaced kinds live in (core/v1 Namespace): creates in a
   * namespace check that it exists and is not being deleted.
   */
  isNamespace?: boolean;
  /**
   * A completed DELETE answers a `Status` (Success) instead of the deleted object, as kube's ConfigMap, Secret
   * and Event do.
   */
  deleteReturnsStatus?: boolean;
  /** Columns for `kubectl get` (NAME is implicit first and AGE implicit last unless listed). */
  printerColumns?: PrinterColumn[];
  /**
   * Extra fields usable in fieldSelector: JSONPaths like `.spec.plan` (selected as `spec.plan`), or
   * `{ name, jsonPath }` when the selector name differs. metadata.name/namespace always work.
   */
  selectableFields?: (string | SelectableField)[];
  /** Semantic checks beyond the schema; returns causes (empty = valid). `old` is set on update. */
  validate?: (obj: KubeObject, old?: KubeObject) => FieldCauseLike[];
  /** Fills defaults on create (after schema validation, before storing). */
  default?: (obj: KubeObject) => void;
  /**
   * Rewrites every write (create, update, patch) after it validated, e.g. Secret `stringData` → `data`.
   * `compileValidator(kind)` runs it on the object it returns as `pruned`.
   */
  normalize?: (obj: KubeObject) => void;
  /**
   * A Kubernetes built-in kind that kubectl knows (core/v1 Namespace, ConfigMap, Secret, Event;
   * coordination.k8s.io/v1 Lease): its OpenAPI name is `io.k8s.api.<group>.<version>.<Kind>` and its PATCH
   * accepts strategic merge patch. Others are published like CRDs (reverse-domain names, JSON merge patch).
   */
  builtin?: boolean;
  /** A built-in kind's protobuf message (k8s.io/api generated.proto), for typed clients' protobuf bodies. */
  protobuf?: ProtobufMessage;
  /** Rule for metadata.name: DNS-1123 subdomain (default) or DNS-1123 label (Namespace). */
  nameRule?: 'subdomain' | 'label';
  /**
   * Whether `kubectl get` shows the implicit NAME first / AGE last columns (default true for both; also
   * skipped when `printerColumns` lists `.metadata.name` / `.metadata.creationTimestamp` itself).
   * Event turns both off, as kube does.
   */
  implicitColumns?: { name?: boolean; age?: boolean };
  /** Verbs served (default: all). */
  verbs?: string[];
}

export function apiVersionOf(k: Pick<KindDeclaration, 'group' | 'version'>): string {
  return k.group ? `${k.group}/${k.version}` : k.version;
}
