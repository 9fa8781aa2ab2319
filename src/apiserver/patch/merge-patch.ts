// RFC 7386 JSON Merge Patch (`application/merge-patch+json`, `kubectl patch --type=merge`): objects merge
// recursively, `null` deletes a member, anything else (arrays included) replaces.
import { ApiError } from '../../lib/errors.js';
import { cloneJson, describeType, isJsonObject, type JsonObject, type JsonValue } from './json-value.js';

/** The RFC's MergePatch(target, patch), on copies. */
export function mergePatch(target: unknown, patch: unknown): JsonValue {
  if (!isJsonObject(patch)) return cloneJson(patch as JsonValue);
  const out: JsonObject = isJsonObject(target) ? cloneJson(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/**
 * Applies a merge patch to a whole API object. The patch must be a JSON object: an array or scalar would
 * replace the object with something that is not one (kube answers these with 400 too).
 */
export function applyMergePatch(target: unknown, patch: unknown): JsonObject {
  if (!isJsonObject(patch)) {
    throw ApiError.badRequest(`a JSON merge patch for an object must be a JSON object, got ${describeType(patch)}`);
  }
  return mergePatch(target, patch) as JsonObject;
}
