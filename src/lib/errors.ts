// The one error type of metalplane: an HTTP status, a machine-readable reason (Kubernetes StatusReason
// vocabulary), a human message saying what was wrong and what would be right, and optional field causes.
// It is thrown where the problem is known and rendered in exactly one place per surface
// (a Kubernetes `Status` on the kube API, `{"errors":[…]}` on the Metal API).

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType'
  | 'TooManyRequests'
  | 'ServerTimeout'
  | 'Timeout'
  | 'InternalError'
  | 'ServiceUnavailable';

/** One field-level cause, as in Kubernetes `StatusCause`. */
export interface ErrorCause {
  /** e.g. FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, FieldValueDuplicate, FieldValueForbidden */
  reason: string;
  message: string;
  /** dotted path, e.g. `spec.plan` or `metadata.name` */
  field?: string;
}

export interface ErrorDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: ErrorCause[];
  retryAfterSeconds?: number;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: ErrorDetails,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  static badRequest(message: string, causes?: ErrorCause[]): ApiError {
    return new ApiError(400, 'BadRequest', message, causes ? { causes } : undefined);
  }
  static unauthorized(message = 'Unauthorized'): ApiError {
    return new ApiError(401, 'Unauthorized', message);
  }
  static forbidden(message: string): ApiError {
    return new ApiError(403, 'Forbidden', message);
  }
  static notFound(kindOrResource: string, name: string, group = ''): ApiError {
    const what = group ? `${kindOrResource}.${group}` : kindOrResource;
    return new ApiError(404, 'NotFound', `${what} "${name}" not found`, { name, group, kind: kindOrResource });
  }
  static alreadyExists(kindOrResource: string, name: string, group = ''): ApiError {
    const what = group ? `${kindOrResource}.${group}` : kindOrResource;
    return new ApiError(409, 'AlreadyExists', `${what} "${name}" already exists`, { name, group, kind: kindOrResource });
  }
  static conflict(message: string, details?: ErrorDetails): ApiError {
    return new ApiError(409, 'Conflict', message, details);
  }
  static gone(message: string): ApiError {
    return new ApiError(410, 'Expired', message);
  }
  static invalid(kind: string, name: string, causes: ErrorCause[], group = ''): ApiError {
    const what = group ? `${kind}.${group}` : kind;
    const summary = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join(', ');
    return new ApiError(422, 'Invalid', `${what} "${name}" is invalid: ${summary}`, { name, group, kind, causes });
  }
  static methodNotAllowed(message: string): ApiError {
    return new ApiError(405, 'MethodNotAllowed', message);
  }
  static notAcceptable(message: string): ApiError {
    return new ApiError(406, 'NotAcceptable', message);
  }
  static tooLarge(message: string): ApiError {
    return new ApiError(413, 'RequestEntityTooLarge', message);
  }
  static unsupportedMediaType(message: string): ApiError {
    return new ApiError(415, 'UnsupportedMediaType', message);
  }
  static internal(message: string): ApiError {
    return new ApiError(500, 'InternalError', message);
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

/** 409 of any kind: a stale resourceVersion, a failed precondition, or an existing name. */
export function isConflict(e: unknown): boolean {
  return isApiError(e) && e.code === 409;
}

/** 409 AlreadyExists: a create whose name is taken. */
export function isAlreadyExists(e: unknown): boolean {
  return isApiError(e) && e.code === 409 && e.reason === 'AlreadyExists';
}

export function isNotFound(e: unknown): boolean {
  return isApiError(e) && e.code === 404;
}

/** 410: a revision older than the store keeps (relist). */
export function isGone(e: unknown): boolean {
  return isApiError(e) && e.code === 410;
}

export function isForbidden(e: unknown): boolean {
  return isApiError(e) && e.code === 403;
}
