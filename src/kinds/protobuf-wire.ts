// The protobuf wire descriptions of the Kubernetes built-in kinds metalplane serves, with the field numbers of
// k8s.io/api and k8s.io/apimachinery generated.proto. Each built-in kind's declaration carries its message
// (`protobuf`), so the decoder in src/apiserver/protobuf.ts never names a kind. kubectl's typed clients send
// protobuf for built-in kinds (`kubectl create namespace|configmap|secret`).

export type ProtobufScalar = 'string' | 'bytes' | 'int' | 'bool' | 'time' | 'microtime' | 'fieldsv1';
export interface ProtobufField {
  name: string;
  type: ProtobufScalar | ProtobufMessage | { map: 'string' | 'bytes' };
  repeated?: boolean;
  /** A Go pointer field: its zero value is meaningful and kept. */
  presence?: boolean;
}
export type ProtobufMessage = { [fieldNumber: number]: ProtobufField };

const OwnerReference: ProtobufMessage = {
  5: { name: 'apiVersion', type: 'string' },
  1: { name: 'kind', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  6: { name: 'controller', type: 'bool', presence: true },
  7: { name: 'blockOwnerDeletion', type: 'bool', presence: true },
};

const ManagedFieldsEntry: ProtobufMessage = {
  1: { name: 'manager', type: 'string' },
  2: { name: 'operation', type: 'string' },
  3: { name: 'apiVersion', type: 'string' },
  4: { name: 'time', type: 'time' },
  6: { name: 'fieldsType', type: 'string' },
  7: { name: 'fieldsV1', type: 'fieldsv1' },
  8: { name: 'subresource', type: 'string' },
};

const ObjectMeta: ProtobufMessage = {
  1: { name: 'name', type: 'string' },
  2: { name: 'generateName', type: 'string' },
  3: { name: 'namespace', type: 'string' },
  4: { name: 'selfLink', type: 'string' },
  5: { name: 'uid', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'generation', type: 'int' },
  8: { name: 'creationTimestamp', type: 'time' },
  9: { name: 'deletionTimestamp', type: 'time' },
  10: { name: 'deletionGracePeriodSeconds', type: 'int', presence: true },
  11: { name: 'labels', type: { map: 'string' } },
  12: { name: 'annotations', type: { map: 'string' } },
  13: { name: 'ownerReferences', type: OwnerReference, repeated: true },
  14: { name: 'finalizers', type: 'string', repeated: true },
  17: { name: 'managedFields', type: ManagedFieldsEntry, repeated: true },
};

export const metadataField: ProtobufField = { name: 'metadata', type: ObjectMeta };

export const ObjectReference: ProtobufMessage = {
  1: { name: 'kind', type: 'string' },
  2: { name: 'namespace', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'fieldPath', type: 'string' },
};

export const NamespaceCondition: ProtobufMessage = {
  1: { name: 'type', type: 'string' },
  2: { name: 'status', type: 'string' },
  4: { name: 'lastTransitionTime', type: 'time' },
  5: { name: 'reason', type: 'string' },
  6: { name: 'message', type: 'string' },
};

