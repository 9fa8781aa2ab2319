// The conventions of the original Metal API that every endpoint shares: `{"errors":[…]}` bodies, JSON request
// parsing and validation against the spec's input schemas, `page`/`per_page` with the `meta` block, `href`s, and
// `include`/`exclude` trees (dotted, up to three levels).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../lib/errors.js';
import { toApiError } from '../apiserver/status.js';
import { describeErrors, metalSpec } from './spec.js';

export const BASE = '/metal/v1';

export type Query = Record<string, string | string[] | undefined>;

/** The one place the Metal API renders errors: `{"errors": ["…"]}`, with field causes as their own lines. */
export function sendMetalError(reply: FastifyReply, err: unknown): FastifyReply {
  const e = toApiError(err);
  const code = e.code === 409 && e.reason === 'Invalid' ? 422 : e.code;
  const errors = e.details?.causes?.length && e.code === 422 ? e.details.causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)) : [e.message];
  if (code === 401) reply.header('WWW-Authenticate', 'X-Auth-Token');
  if (e.details?.retryAfterSeconds) reply.header('Retry-After', String(e.details.retryAfterSeconds));
  return reply.code(code).type('application/json').send({ errors });
}

/** 422 naming what was wrong, as the original answers invalid input. */
export function unprocessable(...messages: string[]): ApiError {
  return new ApiError(422, 'Invalid', messages.join('; '), { causes: messages.map((message) => ({ reason: 'FieldValueInvalid', message })) });
}

export function notImplemented(what: string): ApiError {
  return new ApiError(501, 'InternalError', `${what} is not implemented by metalplane; see docs/metal-api.md for what is`);
}

/** A single query parameter (the last one when repeated). */
export function q1(query: Query, name: string): string | undefined {
  const v = query[name];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

export function boolQuery(query: Query, name: string): boolean | undefined {
  const v = q1(query, name);
  if (v === undefined || v === '') return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw unprocessable(`${name}: must be true or false, got ${JSON.stringify(v)}`);
}

/**
 * The JSON body of a write, validated against the spec's input schema when one is named. Invalid input is a 422
 * listing every problem; a body that is not JSON is a 400.
 */
export function jsonBody<T>(req: FastifyRequest, schema?: string): T {
  const raw = req.body as Buffer | undefined;
  let body: unknown = {};
  if (raw && raw.length > 0) {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== '' && type !== 'application/json' && !type.endsWith('+json')) {
      throw new ApiError(415, 'UnsupportedMediaType', `the request body must be application/json, got ${type}`);
    }
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      throw ApiError.badRequest(`the request body is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw unprocessable('the request body must be a JSON object');
  if (schema) {
    const v = metalSpec().validator(schema);
    if (!v(body)) throw unprocessable(...describeErrors(v.errors));
  }
  return body as T;
}

// ---------------------------------------------------------------- include / exclude

/** A tree of field names: `include=ip_addresses.parent_block,plan` → { ip_addresses: { parent_block: {} }, plan: {} }. */
export interface IncludeTree {
  [field: string]: IncludeTree;
}

export function parseFieldTree(value: string | undefined): IncludeTree {
  const tree: IncludeTree = {};
  if (!value) return tree;
  for (const item of value.split(',')) {
    const parts = item.trim().split('.').filter(Boolean).slice(0, 3);
    let node = tree;
    for (const p of parts) node = node[p] ??= {};
  }
  return tree;
}

/** What to render of a response: references to expand, and fields to leave out. */
export interface Shape {
  include: IncludeTree;
  exclude: IncludeTree;
}

export function shapeOf(query: Query): Shape {
  return { include: parseFieldTree(q1(query, 'include')), exclude: parseFieldTree(q1(query, 'exclude')) };
}

/** The shape one level down, for a nested object. */
export function inner(shape: Shape, field: string): Shape {
  return { include: shape.include[field] ?? {}, exclude: shape.exclude[field] ?? {} };
}

export function isIncluded(shape: Shape, field: string): boolean {
  return shape.include[field] !== undefined;
}

/** Drops excluded leaf fields (`exclude=ssh_keys` or `exclude=plan.specs`). */
export function applyExclude<T extends Record<string, unknown>>(obj: T, shape: Shape): T {
  for (const [field, sub] of Object.entries(shape.exclude)) {
    if (Object.keys(sub).length === 0) delete obj[field];
  }
  return obj;
}

export function href(path: string): { href: string } {
  return { href: `${BASE}${path}` };
}

// ---------------------------------------------------------------- paging

export interface Page<T> {
  items: T[];
  meta: Record<string, unknown>;
}

const MAX_PER_PAGE = 1000;

/** `page` (from 1) and `per_page` (default 10, at most 1000), with the original's meta block. */
export function paginate<T>(all: T[], query: Query, selfPath: string, defaultPerPage = 10): Page<T> {
  const page = intQuery(query, 'page', 1, 1, 1_000_000);
  const perPage = intQuery(query, 'per_page', defaultPerPage, 1, MAX_PER_PAGE);
  const total = all.length;
  const lastPage = Math.max(1, Math.ceil(total / perPage));
  const items = all.slice((page - 1) * perPage, page * perPage);
  const link = (p: number): { href: string } => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (k === 'page' || k === 'per_page' || v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) params.append(k, one);
    }
    params.set('page', String(p));
    params.set('per_page', String(perPage));
    return href(`${selfPath}?${params.toString()}`);
  };
  const meta: Record<string, unknown> = {
    first: link(1),
    last: link(lastPage),
    self: link(page),
    total,
    current_page: page,
    last_page: lastPage,
  };
  if (page > 1) meta.previous = link(Math.min(page - 1, lastPage));
  if (page < lastPage) meta.next = link(page + 1);
  return { items, meta };
}

function intQuery(query: Query, name: string, dflt: number, min: number, max: number): number {
  const v = q1(query, name);
  if (v === undefined || v === '') return dflt;
  if (!/^[0-9]+$/.test(v)) throw unprocessable(`${name}: must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (n < min || n > max) throw unprocessable(`${name}: must be from ${min} to ${max}, got ${n}`);
  return n;
}

/** Case-insensitive substring search over the given fields (the original's `search`). */
export function matchesSearch(search: string | undefined, ...fields: (string | undefined)[]): boolean {
  if (!search) return true;
  const s = search.toLowerCase();
  return fields.some((f) => f !== undefined && f.toLowerCase().includes(s));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An id in the path: a UUID, else 404 as the original answers (never a 5xx). */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}

/** Code-unit order of two strings: for sorting by timestamps and names (localeCompare is ~20× slower). */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
