// Schema pieces shared by every kind: TypeBox helpers that produce Kubernetes-flavoured OpenAPI (maps as
// `additionalProperties`, enums as `enum`, no `const`/`anyOf` that kubectl explain renders badly), and the
// meta/v1 schemas (ObjectMeta, ListMeta, Condition) that validation and OpenAPI both derive from.
import { Type, type Static, type TSchema, type TUnsafe, type SchemaOptions } from '@sinclair/typebox';
import type { Condition } from './types.js';

/** A map with string keys (`map[string]T` in Go): emitted as `additionalProperties`, as kube does. */
export function MapOf<T extends TSchema>(value: T, options: SchemaOptions = {}): TUnsafe<Record<string, Static<T>>> {
  return Type.Unsafe<Record<string, Static<T>>>({ ...options, type: 'object', additionalProperties: value });
}

/** A string restricted to the given values (emitted as `enum`, which OpenAPI v2 and v3 both understand). */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}

/** An integer restricted to the given values (emitted as `enum`), typed as their union, e.g. an address family `4 | 6`. */
export function IntegerEnum<const T extends readonly number[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'integer', enum: [...values] });
}

/** An RFC 3339 timestamp (meta/v1 Time or MicroTime). */
export function Timestamp(description: string): TUnsafe<string> {
  return Type.Unsafe<string>({ type: 'string', format: 'date-time', description });
}

/** An object whose content is not described (kept as is: never pruned). */
export function FreeForm(description: string): TUnsafe<Record<string, unknown>> {
  return Type.Unsafe<Record<string, unknown>>({ type: 'object', description, 'x-kubernetes-preserve-unknown-fields': true });
}

/** A list of objects merged by key (kube's `+listType=map`, strategic-merge `patchMergeKey`). */
export function KeyedList<T extends TSchema>(item: T, key: string, description: string): ReturnType<typeof Type.Array<T>> {
  return Type.Array(item, {
    description,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': [key],
    'x-kubernetes-patch-merge-key': key,
    'x-kubernetes-patch-strategy': 'merge',
  });
}

const OwnerReferenceSchema = Type.Object(
  {
    apiVersion: Type.String({ description: 'API version of the referent.' }),
    kind: Type.String({ description: 'Kind of the referent, e.g. `Hardware`.' }),
    name: Type.String({ description: 'Name of the referent.' }),
    uid: Type.String({ description: 'UID of the referent.' }),
    controller: Type.Optional(Type.Boolean({ description: 'If true, this reference points to the managing controller.' })),
    blockOwnerDeletion: Type.Optional(
      Type.Boolean({
        description:
          'If true, and the owner has the "foregroundDeletion" finalizer, the owner cannot be deleted from the ' +
          'key-value store until this reference is removed.',
      }),
    ),
  },
  {
    description:
      'OwnerReference contains enough information to let you identify an owning object. An owning object must be ' +
      'in the same namespace as the dependent, or be cluster-scoped, so there is no namespace field.',
  },
);

const ManagedFieldsEntrySchema = Type.Object(
  {
    manager: Type.Optional(Type.String({ description: 'Identifier of the workflow managing these fields.' })),
    operation: Type.Optional(
      StringEnum(['Apply', 'Update'], { description: 'The type of operation which lead to this entry: Apply or Update.' }),
    ),
    apiVersion: Type.Optional(Type.String({ description: 'Version of the resource that this field set applies to.' })),
    time: Type.Optional(Timestamp('Timestamp of when this entry was last changed.')),
    fieldsType: Type.Optional(Type.String({ description: 'The discriminator for the fields format; only "FieldsV1".' })),
    fieldsV1: Type.Optional(FreeForm('The set of fields managed, in the FieldsV1 format.')),
    subresource: Type.Optional(Type.String({ description: 'Name of the subresource used to update the object, if any.' })),
  },
  {
    description:
      'ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.',
  },
);

/** meta/v1 ObjectMeta. Its OpenAPI name is `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`. */
export const ObjectMetaSchema = Type.Object(
  {
    name: Type.Optional(
      Type.String({
        description:
          'Name must be unique within a namespace (or, for cluster-scoped kinds, cluster-wide). Is required when ' +
          'creating resources, although some resources may allow a client to request the generation of an ' +
          'appropriate name automatically. Cannot be updated.',
      }),
    ),
    generateName: Type.Optional(
      Type.String({
        description:
          'An optional prefix, used by the server, to generate a unique name ONLY IF the name field has not been ' +
          'provided. The server appends a random suffix to it.',
      }),
    ),
    namespace: Type.Optional(
      Type.String({
        description:
          'The namespace (a metalplane project) the object lives in. An empty namespace is equivalent to "default"; ' +
          'cluster-scoped kinds have none. Must be a DNS_LABEL. Cannot be updated.',
      }),
    ),
    selfLink: Type.Optional(Type.String({ description: 'Deprecated: not set by the server.' })),
    uid: Type.Optional(
      Type.String({
        description:
          'UID is the unique in time and space value for this object. It is generated by the server on successful ' +
          'creation of a resource and is not allowed to change. Populated by the system. Read-only.',
      }),
    ),
    resourceVersion: Type.Optional(
      Type.String({
        description:
          'An opaque value that represents the internal version of this object that can be used by clients to ' +
          'determine when objects have changed, for optimistic concurrency and watches. Populated by the system. ' +
          'Read-only.',
      }),
    ),
    generation: Type.Optional(
      Type.Integer({ format: 'int64', description: 'A sequence number representing a specific generation of the desired state. Populated by the system. Read-only.' }),
    ),
    creationTimestamp: Type.Optional(
      Timestamp(
        'CreationTimestamp is a timestamp representing the server time when this object was created. ' +
          'Populated by the system. Read-only.',
      ),
    ),
    deletionTimestamp: Type.Optional(
      Timestamp(
        'DeletionTimestamp is the RFC 3339 date and time at which this resource will be deleted, set by the ' +
          'server when a graceful deletion is requested. Populated by the system when a graceful deletion is ' +
          'requested. Read-only.',
      ),
    ),
    deletionGracePeriodSeconds: Type.Optional(
      Type.Integer({ format: 'int64', description: 'Number of seconds allowed for this object to gracefully terminate. Read-only.' }),
    ),
    labels: Type.Optional(
      MapOf(Type.String(), {
        description:
          'Map of string keys and values that can be used to organize and categorize (scope and select) objects. ' +
          'May match selectors of replication controllers and services.',
      }),
    ),
    annotations: Type.Optional(
      MapOf(Type.String(), {
        description:
          'Annotations is an unstructured key value map stored with a resource that may be set by external tools ' +
          'to store and retrieve arbitrary metadata. They are not queryable.',
      }),
    ),
    ownerReferences: Type.Optional(
      KeyedList(
        OwnerReferenceSchema,
        'uid',
        'List of objects depended by this object. If ALL objects in the list have been deleted, this object will ' +
          'be garbage collected. If this object is managed by a controller, then an entry in this list will point ' +
          'to this controller, with the controller field set to true. There cannot be more than one managing ' +
          'controller.',
      ),
    ),
    finalizers: Type.Optional(
      Type.Array(Type.String(), {
        description:
          'Must be empty before the object is deleted from the registry. Each entry is an identifier for the ' +
          'responsible component that will remove the entry from the list. If the deletionTimestamp of the object ' +
          'is non-nil, entries in this list can only be removed.',
        'x-kubernetes-list-type': 'set',
        'x-kubernetes-patch-strategy': 'merge',
      }),
    ),
    managedFields: Type.Optional(
      Type.Array(ManagedFieldsEntrySchema, {
        description:
          'ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow. ' +
          'This is mostly for internal housekeeping, and users typically shouldn\'t need to set or understand it.',
        'x-kubernetes-list-type': 'atomic',
      }),
    ),
  },
  {
    description:
      'ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.',
  },
);

/** meta/v1 ListMeta. */
export const ListMetaSchema = Type.Object(
  {
    resourceVersion: Type.Optional(Type.String({ description: 'The revision of the store the list was read at.' })),
    continue: Type.Optional(Type.String({ description: 'Set when more items remain: pass it back as `continue` for the next page.' })),
    remainingItemCount: Type.Optional(
      Type.Integer({ format: 'int64', description: 'The number of items after this page, when the list was paginated.' }),
    ),
    selfLink: Type.Optional(Type.String({ description: 'Deprecated: not set by the server.' })),
  },
  { description: 'ListMeta describes metadata that synthetic resources must have, including lists.' },
);

/** meta/v1 Condition, the Ready/Synced convention. */
export const ConditionSchema = Type.Object(
  {
    type: Type.String({ description: 'Type of condition in CamelCase, e.g. `Ready` or `Synced`.' }),
    status: StringEnum(['True', 'False', 'Unknown'], { description: 'Status of the condition: True, False or Unknown.' }),
    reason: Type.Optional(Type.String({ description: 'A programmatic identifier (CamelCase) for the last transition.' })),
    message: Type.Optional(Type.String({ description: 'A human-readable message about the last transition.' })),
    observedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', description: 'The metadata.generation the condition was set from.' }),
    ),
    lastTransitionTime: Type.Optional(Timestamp('Last time the condition went from one status to another.')),
  },
  { description: 'Condition contains details for one aspect of the current state of this object.' },
);

/**
 * A kind's `status.conditions`. Typed as the `Condition` the controllers write (reason, message and
 * lastTransitionTime always set), which is stricter than what the schema accepts from a client.
 */
export function Conditions(description = 'Conditions of the object (Ready, Synced, and kind-specific ones).'): TUnsafe<Condition[]> {
  return Type.Unsafe<Condition[]>(KeyedList(ConditionSchema, 'type', description));
}

/** kube's duration.HumanDuration: `45s`, `5m12s`, `3h20m`, `3d4h`, `2y10d`. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    const y = Math.trunc(hours / 24 / 365);
    return dy === 0 ? `${y}y` : `${y}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

/** Age since an RFC 3339 timestamp, as kube's tables print it (`<unknown>` when unset or unparsable). */
export function ageSince(timestamp: unknown, now: number): string {
  if (typeof timestamp !== 'string' || timestamp === '') return '<unknown>';
  const t = Date.parse(timestamp);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}
