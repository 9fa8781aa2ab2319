// cloud-init's own JSON schema for cloud-config (specs/cloud-init/, copied from Debian's cloud-init package) as
// admission's judge of a cloud-config part. Errors read like `cloud-init schema`'s: the dotted path inside the
// document, then what is wrong (`write_files: 5 is not of type array`). Compiled once, on first use.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/** Where the schema file sits in the repository (this module runs from dist/src/kinds/cloud-init/). */
export const CLOUD_CONFIG_SCHEMA_FILE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..', '..', '..', '..', 'specs', 'cloud-init', 'schema-cloud-config-v1.json',
);

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (compiled) return compiled;
  const schema = JSON.parse(readFileSync(CLOUD_CONFIG_SCHEMA_FILE, 'utf8')) as Record<string, unknown>;
  // The file declares draft-04 but uses nothing whose meaning changed since (see specs/cloud-init/README.md);
  // Ajv's default draft compiles it once the draft-04 meta-schema reference is left out.
  delete schema.$schema;
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    verbose: true,
    // What cloud-init's validator checks (python-jsonschema's FormatChecker without optional packages): `date`
    // is checked, `uri` and `hostname` are not.
    formats: {
      date: (s: string) => /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(s)),
      uri: true,
      hostname: true,
    },
  });
  compiled = ajv.compile(schema);
  return compiled;
}

/**
 * Checks a parsed cloud-config against cloud-init's schema. Returns messages (empty = valid), each
 * `<path>: <what is wrong>`, at most `max` of them.
 */
export function validateCloudConfigSchema(config: unknown, max = 10): string[] {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    return [`the document must be a mapping of cloud-config keys, not ${describe(config)}`];
  }
  const check = validator();
  if (check(config)) return [];
  const errors = check.errors ?? [];
  // A oneOf/anyOf that failed explains itself; the errors of each alternative it tried are noise (python's
  // jsonschema reports the oneOf alone as well), so keep only errors not nested inside a failed alternative.
  const alternatives = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => e.schemaPath + '/');
  const out: string[] = [];
  for (const e of errors) {
    if (alternatives.some((p) => e.schemaPath.startsWith(p))) continue;
    const m = messageOf(e);
    if (!out.includes(m)) out.push(m);
    if (out.length >= max) break;
  }
  return out;
}

function messageOf(e: ErrorObject): string {
  const path = e.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');
  const p = e.params as Record<string, unknown>;
  const value = brief(e.data);
  let what: string;
  switch (e.keyword) {
    case 'type':
      what = `${value} is not of type ${String(p.type).replace(/,/g, ', ')}`;
      break;
    case 'required':
      what = `${String(p.missingProperty)} is a required property`;
      break;
    case 'enum':
      what = `${value} is not one of ${brief(p.allowedValues)}`;
      break;
    case 'additionalProperties':
      what = `additional properties are not allowed (${String(p.additionalProperty)} was unexpected)`;
      break;
    case 'oneOf':
    case 'anyOf':
      what = `${value} is not valid under any of the given schemas`;
      break;
    case 'minItems':
      what = `${value} is too short (at least ${String(p.limit)} items)`;
      break;
    case 'maxItems':
      what = `${value} is too long (at most ${String(p.limit)} items)`;
      break;
    case 'uniqueItems':
      what = `${value} has non-unique elements`;
      break;
    case 'pattern':
      what = `${value} does not match ${String(p.pattern)}`;
      break;
    case 'format':
      what = `${value} is not a ${String(p.format)}`;
      break;
    default:
      what = `${value} ${e.message ?? 'is invalid'}`;
  }
  return path ? `${path}: ${what}` : what;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'an empty document';
  if (Array.isArray(v)) return 'a list';
  return `a ${typeof v}`;
}

function brief(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
