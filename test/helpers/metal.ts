// A Metal API client for tests that checks the contract on every call: the response of each request is
// validated against the spec's response schema for its operation and status code (Ajv over the spec in
// specs/equinix-metal-api), a 4xx must be `{"errors":[…]}` as application/json, and a 5xx other than the 501 of an
// unimplemented operation fails the test. So every test that uses it is also a contract test.
import assert from 'node:assert/strict';
import { describeErrors, metalSpec } from '../../src/metal-api/spec.js';
import type { TestServer } from './server.js';

export interface MetalResult {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

export interface MetalCallOptions {
  /** X-Auth-Token (default: the admin token); null sends none. */
  token?: string | null;
  headers?: Record<string, string>;
  /** Skip the schema check (only for deliberately malformed requests whose path matches no operation). */
  unchecked?: boolean;
}

/** Which operations were called with which status: the contract tests list what they covered. */
export const covered = new Map<string, Set<number>>();

export async function metal(server: Pick<TestServer, 'plainUrl' | 'token'>, method: string, path: string, body?: unknown, opts: MetalCallOptions = {}): Promise<MetalResult> {
  const token = opts.token === undefined ? server.token : opts.token;
  const res = await fetch(`${server.plainUrl}/metal/v1${path}`, {
    method,
    headers: {
      ...(token !== null ? { 'x-auth-token': token } : {}),
      ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  const out: MetalResult = { status: res.status, body: parsed, text, headers: res.headers };
  if (!opts.unchecked) checkContract(method, path, out);
  return out;
}

export function checkContract(method: string, fullPath: string, r: MetalResult): void {
  const what = `${method} ${fullPath} → ${r.status}`;
  assert.ok(r.status < 500 || r.status === 501, `${what}: a 5xx is never an answer to a client (${r.text.slice(0, 300)})`);
  if (r.status === 204) {
    assert.equal(r.text, '', `${what}: a 204 has no body`);
    return;
  }
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: every answer is application/json`);
  assert.ok(r.body !== undefined, `${what}: the body is JSON (${r.text.slice(0, 200)})`);
  if (r.status >= 400) {
    assert.ok(Array.isArray(r.body.errors) && r.body.errors.length > 0 && r.body.errors.every((e: unknown) => typeof e === 'string' && e.length > 0), `${what}: an error body is {"errors":["…"]}, got ${r.text.slice(0, 200)}`);
  }
  const path = fullPath.split('?')[0]!;
  const op = metalSpec().match(method, path);
  if (!op) return;
  const key = `${op.method} ${op.path}`;
  if (!covered.has(key)) covered.set(key, new Set());
  covered.get(key)!.add(r.status);
  const schema = op.responses[String(r.status)];
  // A success must be one the spec lists (a 200 where the spec says 201 breaks generated clients).
  if (r.status < 400) assert.ok(String(r.status) in op.responses, `${what}: ${r.status} is not a response the spec lists for ${op.operationId} (${Object.keys(op.responses).join(', ')})`);
  if (!schema) return;
  const v = metalSpec().validator(schema);
  assert.ok(v(r.body), `${what}: the body does not match the spec's ${schema}: ${describeErrors(v.errors).slice(0, 8).join('; ')}`);
}
