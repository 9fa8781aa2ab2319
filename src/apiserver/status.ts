// Turns any error into a Kubernetes `Status` — the one place the kube API renders errors.
import { ApiError, isApiError } from '../lib/errors.js';
import { isStoreError, type StoreError } from '../store/errors.js';

export interface StatusObject {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  details?: Record<string, unknown>;
  code: number;
}

/** Maps errors raised by Fastify itself (body parsing, size limits) to client errors. */
function fromFastifyError(e: { code?: string; statusCode?: number; message: string }): ApiError | undefined {
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return ApiError.tooLarge('Request entity too large: the request body exceeds the limit of 3 MiB');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return ApiError.unsupportedMediaType('the request body has no Content-Type or one that is not supported: send application/json or application/yaml (or a patch type for PATCH)');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return ApiError.badRequest(e.message);
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode, e.statusCode === 413 ? 'RequestEntityTooLarge' : 'BadRequest', e.message);
  }
  return undefined;
}

/** The kube API's reading of a store error (the registry names the object where it knows it). */
function fromStoreError(e: StoreError): ApiError {
  switch (e.code) {
    case 'KeyExists':
      return new ApiError(409, 'AlreadyExists', e.message);
    case 'KeyNotFound':
      return new ApiError(404, 'NotFound', e.message);
    case 'RevisionMismatch':
      return ApiError.conflict(e.message);
    case 'Compacted':
      return ApiError.gone(e.message);
    case 'FutureRevision':
      return new ApiError(504, 'Timeout', e.message, { retryAfterSeconds: 1 });
    case 'InvalidArgument':
      return ApiError.badRequest(e.message);
    case 'Closed':
    case 'Unavailable':
      return new ApiError(503, 'ServiceUnavailable', e.message, { retryAfterSeconds: 1 });
    case 'Corrupt':
      return ApiError.internal(e.message);
  }
}

export function toApiError(e: unknown): ApiError {
  if (isApiError(e)) return e;
  if (isStoreError(e)) return fromStoreError(e);
  if (e && typeof e === 'object' && 'message' in e) {
    const f = fromFastifyError(e as { code?: string; statusCode?: number; message: string });
    if (f) return f;
  }
  return ApiError.internal(e instanceof Error ? e.message : String(e));
}

export function statusFromError(err: ApiError): StatusObject {
  const s: StatusObject = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: err.message,
    reason: err.reason === 'InternalError' ? 'InternalError' : err.reason,
    code: err.code,
  };
  if (err.details) {
    const d: Record<string, unknown> = {};
    if (err.details.name !== undefined) d.name = err.details.name;
    if (err.details.group) d.group = err.details.group;
    if (err.details.kind) d.kind = err.details.kind;
    if (err.details.causes?.length) d.causes = err.details.causes;
    if (err.details.retryAfterSeconds) d.retryAfterSeconds = err.details.retryAfterSeconds;
    s.details = d;
  }
  return s;
}

export function successStatus(details?: Record<string, unknown>): StatusObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', message: '', reason: '', code: 200, ...(details ? { details } : {}) };
}
