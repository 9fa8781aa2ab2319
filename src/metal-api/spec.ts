// The Equinix Metal OpenAPI spec (specs/equinix-metal-api, MIT) as the contract of /metal/v1: request bodies are
// validated against its input schemas, responses are checked against it in the contract tests, and an operation
// it lists that metalplane does not implement answers 501. Files are read lazily, one schema file at a time, and
// compiled by Ajv with each file as its own `$id`, so recursive references (Project → Organization → Project)
// need no dereferencing.
import { readFileSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** The spec's root folder in the repository. */
export const SPEC_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'specs', 'equinix-metal-api');

export interface SpecOperation {
  method: string;
  /** The path template as the spec writes it, e.g. `/devices/{id}`. */
  path: string;
  operationId: string;
  /** Status code → the `$ref`-able schema id of its JSON body (absent: no body). */
  responses: Record<string, string | undefined>;
  /** The schema id of the JSON request body, if any. */
  requestBody?: string;
}

type Json = unknown;

function readYaml(rel: string): Json {
  return YAML.parse(readFileSync(join(SPEC_DIR, rel), 'utf8'), { maxAliasCount: 100 });
}

/** Rewrites every relative `$ref` of a file to an absolute id (`/components/schemas/Device.yaml#…`). */
function absolutize(node: Json, fileId: string, found: Set<string>): Json {
  if (Array.isArray(node)) return node.map((n) => absolutize(n, fileId, found));
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(node as Record<string, Json>)) {
    if (k === '$ref' && typeof v === 'string') {
      const [file, frag] = v.split('#') as [string, string | undefined];
      const target = file === '' ? fileId : posix.normalize(posix.join(posix.dirname(fileId), file));
      if (file !== '') found.add(target);
      out[k] = frag !== undefined ? `${target}#${frag}` : target;
    } else if (k === 'example' || k === 'examples') {
      // Examples are documentation, and Ajv would read `examples` as a keyword.
      continue;
    } else out[k] = absolutize(v, fileId, found);
  }
  return out;
}

export class MetalSpec {
  private readonly ajv: Ajv;
  private readonly loaded = new Set<string>();
  private readonly validators = new Map<string, ValidateFunction>();
  private ops: SpecOperation[] | undefined;

  constructor() {
    this.ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
    addFormats(this.ajv);
    // The spec writes `format: string` in places; it constrains nothing.
    this.ajv.addFormat('string', true);
  }

  /** Loads a schema file and every file it references (transitively) into Ajv. */
  private load(id: string): void {
    const pending = [id];
    while (pending.length) {
      const f = pending.pop()!;
      if (this.loaded.has(f)) continue;
      this.loaded.add(f);
      const found = new Set<string>();
      const schema = absolutize(readYaml(f.slice(1)), f, found) as Record<string, Json>;
      this.ajv.addSchema({ ...schema, $id: f }, f);
      for (const g of found) if (!this.loaded.has(g)) pending.push(g);
    }
  }

  /** A validator for a schema file of components/schemas (`Device`), or a schema id as listed in an operation. */
  validator(nameOrId: string): ValidateFunction {
    const id = nameOrId.startsWith('/') ? nameOrId : `/components/schemas/${nameOrId}.yaml`;
    let v = this.validators.get(id);
    if (!v) {
      this.load(id.split('#')[0]!);
      v = this.ajv.getSchema(id)!;
      if (!v) throw new Error(`metal spec: no schema ${id}`);
      this.validators.set(id, v);
    }
    return v;
  }

  /** Every operation of the spec. */
  operations(): SpecOperation[] {
    if (this.ops) return this.ops;
    const root = readYaml('openapi3.yaml') as { paths: Record<string, { $ref: string }> };
    const ops: SpecOperation[] = [];
    for (const [path, ref] of Object.entries(root.paths)) {
      const fileId = posix.normalize(posix.join('/', ref.$ref));
      const item = absolutize(readYaml(fileId.slice(1)), fileId, new Set()) as Record<string, Record<string, Json>>;
      for (const [method, op] of Object.entries(item)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
        const o = op as { operationId: string; responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>; requestBody?: { content?: Record<string, { schema?: { $ref?: string } }> } };
        const responses: Record<string, string | undefined> = {};
        for (const [code, r] of Object.entries(o.responses ?? {})) responses[code] = r.content?.['application/json']?.schema?.$ref;
        ops.push({ method: method.toUpperCase(), path, operationId: o.operationId, responses, requestBody: o.requestBody?.content?.['application/json']?.schema?.$ref });
      }
    }
    this.ops = ops;
    return ops;
  }

  /** The spec operation a method and concrete path match (`GET /devices/8f…` → findDeviceById). */
  match(method: string, path: string): SpecOperation | undefined {
    const segs = path.split('/').filter(Boolean);
    let best: SpecOperation | undefined;
    let bestLiterals = -1;
    for (const op of this.operations()) {
      if (op.method !== method) continue;
      const t = op.path.split('/').filter(Boolean);
      if (t.length !== segs.length) continue;
      let literals = 0;
      let ok = true;
      for (let i = 0; i < t.length; i++) {
        if (t[i]!.startsWith('{')) continue;
        if (t[i] !== segs[i]) {
          ok = false;
          break;
        }
        literals++;
      }
      if (ok && literals > bestLiterals) {
        best = op;
        bestLiterals = literals;
      }
    }
    return best;
  }
}

/** Ajv's errors as the Metal API's messages: `name: must NOT have fewer than 1 characters`. */
export function describeErrors(errors: ErrorObject[] | null | undefined, root = ''): string[] {
  const out: string[] = [];
  for (const e of errors ?? []) {
    const path = (root + e.instancePath).replace(/^\//, '').replace(/\//g, '.');
    if (e.keyword === 'enum') out.push(`${path || 'body'}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`);
    else if (e.keyword === 'required') out.push(`${path ? path + '.' : ''}${(e.params as { missingProperty: string }).missingProperty} is required`);
    else out.push(`${path || 'body'}: ${e.message ?? 'is invalid'}`);
  }
  return [...new Set(out)];
}

let shared: MetalSpec | undefined;
/** One spec per process: its compiled validators are shared by every request. */
export function metalSpec(): MetalSpec {
  return (shared ??= new MetalSpec());
}
