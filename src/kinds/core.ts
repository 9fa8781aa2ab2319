// The Kubernetes built-in kinds the tools expect to find: core/v1 Namespace (a metalplane project), ConfigMap,
// Secret, Event, and coordination.k8s.io/v1 Lease (the controllers' leader lease). Field names, columns and
// rules follow upstream so that kubectl, client libraries and controllers treat them as the real thing.
import { Type } from '@sinclair/typebox';
import { ageSince, Conditions, MapOf, StringEnum, Timestamp } from './common.js';
import type { KindDeclaration, KubeObject, TableCell } from './types.js';
import { metadataField, NamespaceCondition, ObjectReference } from './protobuf-wire.js';
import { fieldForbidden, fieldInvalid, fieldRequired, fieldTooLong, isConfigKey, type FieldError } from './validation.js';

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function countKeys(...maps: unknown[]): number {
  return maps.reduce<number>((n, m) => n + Object.keys(record(m)).length, 0);
}

// ---------------------------------------------------------------------------------------------------------
// Namespace

export const namespaceKind: KindDeclaration = {
  group: '',
  version: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  singular: 'namespace',
  scope: 'Cluster',
  shortNames: ['ns'],
  builtin: true,
  protobuf: {
    1: metadataField,
    2: { name: 'spec', type: { 1: { name: 'finalizers', type: 'string', repeated: true } } },
    3: { name: 'status', type: { 1: { name: 'phase', type: 'string' }, 2: { name: 'conditions', type: NamespaceCondition, repeated: true } } },
  },
  nameRule: 'label',
  statusSubresource: true,
  description:
    'Namespace provides a scope for Names. In metalplane a namespace is a project: devices, IPs, SSH keys and ' +
    'networks live in one, and the Metal API project id is the namespace uid.',
  schema: Type.Object({
    spec: Type.Optional(
      Type.Object(
        {
          finalizers: Type.Optional(
            Type.Array(Type.String(), {
              description:
                'Finalizers is an opaque list of values that must be empty to permanently remove the object from storage.',
              'x-kubernetes-list-type': 'atomic',
            }),
          ),
        },
        { description: 'Spec defines the behavior of the Namespace.' },
      ),
    ),
    status: Type.Optional(
      Type.Object(
        {
          phase: Type.Optional(
            StringEnum(['Active', 'Terminating'], {
              description:
                'Phase is the current lifecycle phase of the namespace: Active, or Terminating while its ' +
                'contents are being deleted.',
            }),
          ),
          conditions: Type.Optional(Conditions('Represents the latest available observations of a namespace\'s current state.')),
        },
        { description: 'Status describes the current status of a Namespace.' },
      ),
    ),
  }),
  printerColumns: [{ name: 'Status', type: 'string', jsonPath: '.status.phase', description: 'The lifecycle phase.' }],
  selectableFields: ['.status.phase'],
  isNamespace: true,
  strategy: {
    prepareForCreate: (obj) => {
      // As kube: a namespace always starts with the `kubernetes` finalizer, so its content is deleted first.
      const spec = record(obj.spec) as { finalizers?: string[] };
      if (!spec.finalizers?.includes(NAMESPACE_FINALIZER)) spec.finalizers = [...(spec.finalizers ?? []), NAMESPACE_FINALIZER];
      obj.spec = spec;
      obj.status = { phase: 'Active' };
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name! };
    },
    // As kube's namespace strategy: only the finalize subresource changes spec.finalizers, so a plain
    // `kubectl patch ns x -p '{"spec":{"finalizers":[]}}'` cannot cut a namespace's clean-up short.
    prepareForUpdate: (next, current, subresource) => {
      if (subresource === 'finalize') return;
      const finalizers = (record(current.spec) as { finalizers?: string[] }).finalizers;
      const spec = { ...record(next.spec) };
      if (finalizers === undefined) delete spec.finalizers;
      else spec.finalizers = finalizers;
      if (Object.keys(spec).length || next.spec !== undefined || current.spec !== undefined) next.spec = spec;
      // The name label follows the name, whatever a write sends.
      next.metadata.labels = { ...(next.metadata.labels ?? {}), 'kubernetes.io/metadata.name': current.metadata.name };
    },
    pendingFinalizers: (obj) => (record(obj.spec) as { finalizers?: string[] }).finalizers ?? [],
    prepareForDelete: (obj) => {
      obj.status = { ...record(obj.status), phase: 'Terminating' };
    },
  },
  subresources: {
    // PUT /api/v1/namespaces/{name}/finalize: the namespace controller's way to release spec.finalizers.
    finalize: {
      merge: (request, current) => {
        const finalizers = (record(request.spec) as { finalizers?: unknown }).finalizers;
        const spec = { ...record(current.spec) };
        if (finalizers === undefined) delete spec.finalizers;
        else spec.finalizers = finalizers;
        return { ...current, metadata: { ...current.metadata }, spec };
      },
    },
  },
};

/** The finalizer kube puts on every namespace: content is deleted before the namespace goes. */
export const NAMESPACE_FINALIZER = 'kubernetes';

// ---------------------------------------------------------------------------------------------------------
// ConfigMap and Secret

const maxDataBytes = 1024 * 1024;

/** Shared rules of ConfigMap and Secret data: config keys, no key in both maps, total size, immutability. */
function validateDataMaps(
  obj: KubeObject,
  old: KubeObject | undefined,
  maps: { name: string; decoded: (v: string) => number }[],
  overlapAllowed = false,
): FieldError[] {
  const causes: FieldError[] = [];
  const seen = new Map<string, string>();
  let total = 0;
  for (const { name, decoded } of maps) {
    for (const [key, value] of Object.entries(record(obj[name]))) {
      for (const m of isConfigKey(key)) causes.push(fieldInvalid(`${name}[${key}]`, key, m));
      const other = seen.get(key);
      if (other && !overlapAllowed) causes.push(fieldInvalid(`${name}[${key}]`, key, `duplicate of key present in ${other}`));
      seen.set(key, name);
      if (typeof value === 'string') total += decoded(value);
    }
  }
  if (total > maxDataBytes) causes.push(fieldTooLong(maps[0]!.name, maxDataBytes));
  if (old && old.immutable === true) {
    if (obj.immutable !== true) causes.push(fieldForbidden('immutable', 'field is immutable when `immutable` is set'));
    for (const { name } of maps) {
      if (JSON.stringify(record(obj[name])) !== JSON.stringify(record(old[name]))) {
        causes.push(fieldForbidden(name, 'field is immutable when `immutable` is set'));
      }
    }
  }
  return causes;
}

const utf8Bytes = (v: string): number => Buffer.byteLength(v);
const base64Bytes = (v: string): number => Buffer.from(v, 'base64').length;

const immutableField = Type.Optional(
  Type.Boolean({
    description:
      'Immutable, if set to true, ensures that data stored in the object cannot be updated (only object ' +
      'metadata can be modified). If not set to true, the field can be modified at any time.',
  }),
);

export const configMapKind: KindDeclaration = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  singular: 'configmap',
  scope: 'Namespaced',
  shortNames: ['cm'],
  builtin: true,
  protobuf: {
    1: metadataField,
    2: { name: 'data', type: { map: 'string' } },
    3: { name: 'binaryData', type: { map: 'bytes' } },
    4: { name: 'immutable', type: 'bool', presence: true },
  },
  deleteReturnsStatus: true,
  description: 'ConfigMap holds configuration data for pods and controllers to consume.',
  schema: Type.Object({
    data: Type.Optional(
      MapOf(Type.String(), {
        description:
          "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or " +
          "'.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must " +
          'not overlap with the keys in the BinaryData field.',
      }),
    ),
    binaryData: Type.Optional(
      MapOf(Type.String({ format: 'byte' }), {
        description:
          "BinaryData contains the binary data (base64-encoded). Each key must consist of alphanumeric " +
          "characters, '-', '_' or '.'. The keys stored in BinaryData must not overlap with the ones in Data.",
      }),
    ),
    immutable: immutableField,
  }),
  printerColumns: [
    {
      name: 'Data',
      type: 'integer',
      jsonPath: '.data',
      description: 'The number of keys in data and binaryData.',
      value: (obj): TableCell => countKeys(obj.data, obj.binaryData),
    },
  ],
  validate: (obj, old) =>
    validateDataMaps(obj, old, [
      { name: 'data', decoded: utf8Bytes },
      { name: 'binaryData', decoded: base64Bytes },
    ]),
};

/** Keys a Secret of a well-known type must carry (kube's ValidateSecret). */
const requiredSecretKeys: Record<string, string[]> = {
  'kubernetes.io/dockerconfigjson': ['.dockerconfigjson'],
  'kubernetes.io/dockercfg': ['.dockercfg'],
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
  'kubernetes.io/ssh-auth': ['ssh-privatekey'],
};

export const secretKind: KindDeclaration = {
  group: '',
  version: 'v1',
  kind: 'Secret',
  plural: 'secrets',
  singular: 'secret',
  scope: 'Namespaced',
  builtin: true,
  protobuf: {
    1: metadataField,
    2: { name: 'data', type: { map: 'bytes' } },
    3: { name: 'type', type: 'string' },
    4: { name: 'stringData', type: { map: 'string' } },
    5: { name: 'immutable', type: 'bool', presence: true },
  },
  deleteReturnsStatus: true,
  description:
    'Secret holds secret data of a certain type (BMC credentials, API tokens, kubeconfigs). The total bytes of ' +
    'the values in the Data field must be less than 1 MiB.',
  schema: Type.Object({
    type: Type.Optional(
      Type.String({
        default: 'Opaque',
        description:
          'Used to facilitate programmatic handling of secret data: Opaque (default), kubernetes.io/tls, ' +
          'kubernetes.io/basic-auth, kubernetes.io/ssh-auth, kubernetes.io/dockerconfigjson, …',
      }),
    ),
    data: Type.Optional(
      MapOf(Type.String({ format: 'byte' }), {
        description:
          "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. " +
          'The serialized form of the secret data is a base64 encoded string, representing the arbitrary ' +
          '(possibly non-string) data value here.',
      }),
    ),
    stringData: Type.Optional(
      MapOf(Type.String(), {
        description:
          'stringData allows specifying non-binary secret data in string form. It is provided as a write-only ' +
          'input field for convenience. All keys and values are merged into the data field on write, ' +
          'overwriting any existing values. The stringData field is never output when reading from the API.',
      }),
    ),
    immutable: immutableField,
  }),
  printerColumns: [
    { name: 'Type', type: 'string', jsonPath: '.type', description: 'The type of the secret.' },
    {
      name: 'Data',
      type: 'integer',
      jsonPath: '.data',
      description: 'The number of keys in data.',
      value: (obj): TableCell => countKeys(obj.data),
    },
  ],
  selectableFields: ['.type'],
  validate: (obj, old) => {
    // stringData may repeat a data key: it overrides it on write.
    const causes = validateDataMaps(
      obj,
      old,
      [
        { name: 'data', decoded: base64Bytes },
        { name: 'stringData', decoded: utf8Bytes },
      ],
      true,
    );
    const type = typeof obj.type === 'string' ? obj.type : 'Opaque';
    if (old && (typeof old.type === 'string' ? old.type : 'Opaque') !== type) {
      causes.push(fieldInvalid('type', type, 'field is immutable'));
    }
    const keys = new Set([...Object.keys(record(obj.data)), ...Object.keys(record(obj.stringData))]);
    for (const key of requiredSecretKeys[type] ?? []) {
      if (!keys.has(key)) causes.push(fieldRequired(`data[${key}]`));
    }
    return causes;
  },
  normalize: normalizeSecret,
};

/** Secret writes: `stringData` is merged into `data` (base64), overriding it, and never stored. */
export function normalizeSecret(obj: KubeObject): void {
  if (obj.type === undefined) obj.type = 'Opaque';
  const stringData = record(obj.stringData);
  if (obj.stringData !== undefined) {
    const data = { ...record(obj.data) };
    for (const [k, v] of Object.entries(stringData)) {
      if (typeof v === 'string') data[k] = Buffer.from(v, 'utf8').toString('base64');
    }
    obj.data = data;
    delete obj.stringData;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Event (core/v1)

const ObjectReferenceSchema = (description: string) =>
  Type.Object(
    {
      apiVersion: Type.Optional(Type.String({ description: 'API version of the referent.' })),
      kind: Type.Optional(Type.String({ description: 'Kind of the referent.' })),
      namespace: Type.Optional(Type.String({ description: 'Namespace of the referent.' })),
      name: Type.Optional(Type.String({ description: 'Name of the referent.' })),
      uid: Type.Optional(Type.String({ description: 'UID of the referent.' })),
      resourceVersion: Type.Optional(Type.String({ description: 'Specific resourceVersion to which this reference is made, if any.' })),
      fieldPath: Type.Optional(
        Type.String({ description: 'If referring to a piece of an object instead of an entire object, a path such as `spec.nics[0]`.' }),
      ),
    },
    { description },
  );

/** When an event was last seen: series, then lastTimestamp, then eventTime, then creation (kube's printer). */
function eventLastSeen(obj: KubeObject): string | undefined {
  const series = record(obj.series);
  for (const t of [series.lastObservedTime, obj.lastTimestamp, obj.eventTime, obj.metadata.creationTimestamp]) {
    if (typeof t === 'string' && t) return t;
  }
  return undefined;
}

function eventFirstSeen(obj: KubeObject): string | undefined {
  for (const t of [obj.firstTimestamp, obj.eventTime, obj.metadata.creationTimestamp]) {
    if (typeof t === 'string' && t) return t;
  }
  return undefined;
}

export const eventKind: KindDeclaration = {
  group: '',
  version: 'v1',
  kind: 'Event',
  plural: 'events',
  singular: 'event',
  scope: 'Namespaced',
  shortNames: ['ev'],
  builtin: true,
  protobuf: {
    1: metadataField,
    2: { name: 'involvedObject', type: ObjectReference },
    3: { name: 'reason', type: 'string' },
    4: { name: 'message', type: 'string' },
    5: { name: 'source', type: { 1: { name: 'component', type: 'string' }, 2: { name: 'host', type: 'string' } } },
    6: { name: 'firstTimestamp', type: 'time' },
    7: { name: 'lastTimestamp', type: 'time' },
    8: { name: 'count', type: 'int' },
    9: { name: 'type', type: 'string' },
    10: { name: 'eventTime', type: 'microtime' },
    11: { name: 'series', type: { 1: { name: 'count', type: 'int' }, 2: { name: 'lastObservedTime', type: 'microtime' } }, presence: true },
    12: { name: 'action', type: 'string' },
    13: { name: 'related', type: ObjectReference, presence: true },
    14: { name: 'reportingComponent', type: 'string' },
    15: { name: 'reportingInstance', type: 'string' },
  },
  deleteReturnsStatus: true,
  description:
    'Event is a report of an event somewhere in the cluster: a controller provisioning a device, a BMC that ' +
    'stopped answering, a workflow action that failed.',
  schema: Type.Object(
    {
      involvedObject: ObjectReferenceSchema('The object that this event is about.'),
      reason: Type.Optional(
        Type.String({ description: 'This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.' }),
      ),
      message: Type.Optional(Type.String({ description: 'A human-readable description of the status of this operation.' })),
      source: Type.Optional(
        Type.Object(
          {
            component: Type.Optional(Type.String({ description: 'Component from which the event is generated.' })),
            host: Type.Optional(Type.String({ description: 'Node name (here: metalplane instance) on which the event is generated.' })),
          },
          { description: 'The component reporting this event. Should be a short machine understandable string.' },
        ),
      ),
      firstTimestamp: Type.Optional(Timestamp('The time at which the event was first recorded.')),
      lastTimestamp: Type.Optional(Timestamp('The time at which the most recent occurrence of this event was recorded.')),
      count: Type.Optional(Type.Integer({ format: 'int32', description: 'The number of times this event has occurred.' })),
      type: Type.Optional(Type.String({ description: 'Type of this event (Normal, Warning); new types could be added in the future.' })),
      eventTime: Type.Optional(Timestamp('Time when this Event was first observed (MicroTime).')),
      series: Type.Optional(
        Type.Object(
          {
            count: Type.Optional(Type.Integer({ format: 'int32', description: 'Number of occurrences in this series up to the last heartbeat time.' })),
            lastObservedTime: Type.Optional(Timestamp('Time of the last occurrence observed.')),
          },
          { description: 'Data about the Event series this event represents or nil if it\'s a singleton Event.' },
        ),
      ),
      action: Type.Optional(Type.String({ description: 'What action was taken/failed regarding to the Regarding object.' })),
      related: Type.Optional(ObjectReferenceSchema('Optional secondary object for more complex actions.')),
      reportingComponent: Type.Optional(
        Type.String({ description: 'Name of the controller that emitted this Event, e.g. `metalplane.dev/device-controller`.' }),
      ),
      reportingInstance: Type.Optional(Type.String({ description: 'ID of the controller instance, e.g. `metalplane-0`.' })),
    },
    { description: 'Event is a report of an event somewhere in the cluster.' },
  ),
  // kubectl get events: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE (and more with -o wide); no NAME/AGE first/last.
  implicitColumns: { name: false, age: false },
  printerColumns: [
    {
      name: 'Last Seen',
      type: 'string',
      jsonPath: '.lastTimestamp',
      description: 'Time since the event was last seen.',
      value: (obj, now): TableCell => {
        const last = ageSince(eventLastSeen(obj), now);
        const series = record(obj.series);
        const count = typeof series.count === 'number' ? series.count : typeof obj.count === 'number' ? obj.count : 1;
        return count > 1 ? `${last} (x${count} over ${ageSince(eventFirstSeen(obj), now)})` : last;
      },
    },
    { name: 'Type', type: 'string', jsonPath: '.type', description: 'Normal or Warning.' },
    { name: 'Reason', type: 'string', jsonPath: '.reason', description: 'Why the event happened.' },
    {
      name: 'Object',
      type: 'string',
      jsonPath: '.involvedObject',
      description: 'The object the event is about, as kind/name.',
      value: (obj): TableCell => {
        const ref = record(obj.involvedObject);
        return `${String(ref.kind ?? '').toLowerCase()}/${String(ref.name ?? '')}`;
      },
    },
    { name: 'Subobject', type: 'string', jsonPath: '.involvedObject.fieldPath', priority: 1, description: 'The part of the object.' },
    {
      name: 'Source',
      type: 'string',
      jsonPath: '.source.component',
      priority: 1,
      description: 'The component that reported the event.',
      value: (obj): TableCell => {
        const source = record(obj.source);
        const component = typeof source.component === 'string' && source.component ? source.component : obj.reportingComponent;
        const host = typeof source.host === 'string' && source.host ? `, ${source.host}` : '';
        return typeof component === 'string' && component ? `${component}${host}` : '';
      },
    },
    { name: 'Message', type: 'string', jsonPath: '.message', description: 'What happened.' },
    {
      name: 'First Seen',
      type: 'string',
      jsonPath: '.firstTimestamp',
      priority: 1,
      description: 'Time since the event was first seen.',
      value: (obj, now): TableCell => ageSince(eventFirstSeen(obj), now),
    },
    {
      name: 'Count',
      type: 'integer',
      jsonPath: '.count',
      priority: 1,
      description: 'How many times the event happened.',
      value: (obj): TableCell => {
        const series = record(obj.series);
        return typeof series.count === 'number' ? series.count : typeof obj.count === 'number' ? obj.count : 1;
      },
    },
    { name: 'Name', type: 'string', format: 'name', jsonPath: '.metadata.name', priority: 1, description: 'The event name.' },
  ],
  selectableFields: [
    '.involvedObject.kind',
    '.involvedObject.namespace',
    '.involvedObject.name',
    '.involvedObject.uid',
    '.involvedObject.apiVersion',
    '.involvedObject.resourceVersion',
    '.involvedObject.fieldPath',
    '.reason',
    '.reportingComponent',
    { name: 'source', jsonPath: '.source.component' },
    '.type',
  ],
};

// ---------------------------------------------------------------------------------------------------------
// Lease (coordination.k8s.io/v1)

export const leaseKind: KindDeclaration = {
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  plural: 'leases',
  singular: 'lease',
  scope: 'Namespaced',
  builtin: true,
  protobuf: {
    1: metadataField,
    2: {
      name: 'spec',
      type: {
        1: { name: 'holderIdentity', type: 'string', presence: true },
        2: { name: 'leaseDurationSeconds', type: 'int', presence: true },
        3: { name: 'acquireTime', type: 'microtime' },
        4: { name: 'renewTime', type: 'microtime' },
        5: { name: 'leaseTransitions', type: 'int', presence: true },
        6: { name: 'strategy', type: 'string', presence: true },
        7: { name: 'preferredHolder', type: 'string', presence: true },
      },
    },
  },
  description: 'Lease defines a lease concept: metalplane replicas hold one to elect the controllers\' leader.',
  schema: Type.Object({
    spec: Type.Optional(
      Type.Object(
        {
          holderIdentity: Type.Optional(Type.String({ description: 'The identity of the holder of a current lease.' })),
          leaseDurationSeconds: Type.Optional(
            Type.Integer({
              format: 'int32',
              minimum: 1,
              description:
                'The duration that candidates for a lease need to wait to force acquire it, measured against the ' +
                'time of the last observed renewTime.',
            }),
          ),
          acquireTime: Type.Optional(Timestamp('When the current lease was acquired (MicroTime).')),
          renewTime: Type.Optional(Timestamp('When the current holder of a lease has last updated the lease (MicroTime).')),
          leaseTransitions: Type.Optional(
            Type.Integer({ format: 'int32', minimum: 0, description: 'The number of transitions of a lease between holders.' }),
          ),
          strategy: Type.Optional(Type.String({ description: 'The strategy for picking the leader for coordinated leader election.' })),
          preferredHolder: Type.Optional(Type.String({ description: 'The holder coordinated leader election would prefer next.' })),
        },
        { description: 'Specification of the Lease.' },
      ),
    ),
  }),
  printerColumns: [{ name: 'Holder', type: 'string', jsonPath: '.spec.holderIdentity', description: 'The current holder.' }],
};
