// The patch and server-side apply engine: pure functions over plain JSON, no I/O.
export { applyJsonPatch, applyJsonPatch as jsonPatch, parseJsonPatch, parseJsonPointer, formatJsonPointer, MAX_JSON_PATCH_OPERATIONS } from './json-patch.js';
export type { JsonPatchOperation } from './json-patch.js';
export { applyMergePatch, mergePatch } from './merge-patch.js';
export { applyStrategicMergePatch, applyStrategicMergePatch as strategicMergePatch } from './strategic-merge.js';
export { schemaHintsFrom, defaultSchemaHints } from './schema-hints.js';
export type { SchemaHints, ListType, MapType } from './schema-hints.js';
export {
  FieldSet,
  fieldSetFromObject,
  fieldSetFromValue,
  fieldSetFromFieldsV1,
  fieldSetToFieldsV1,
  formatPath,
  comparePaths,
  compareObjects,
  isTrackedPath,
  withNamedAncestors,
  serializePathElement,
  parsePathElement,
  hintsAt,
} from './managed-fields.js';
export type { PathElement, FieldPath, Comparison, Subresource } from './managed-fields.js';
export { applyPatch, trackUpdate, managedFieldSets, LAST_APPLIED_ANNOTATION, BEFORE_FIRST_APPLY_MANAGER } from './apply.js';
export type { ApplyInput, TrackUpdateInput } from './apply.js';
export type { JsonValue, JsonObject } from './json-value.js';
