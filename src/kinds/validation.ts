// Validation derived from a kind's declaration: the whole object (apiVersion, kind, ObjectMeta and the kind's
// schema, status included) is pruned of unknown fields, defaulted and checked with Ajv, then metadata is checked
// with Kubernetes' name/label/annotation rules and the kind's semantic hook runs. Errors read like kube's
// (`metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of …`) so that
// kubectl users see familiar messages. It sees every write as it will be stored (creates, updates, and the
// result of a patch or apply), so it is also where the size and depth of stored objects are bounded.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ErrorCause } from '../lib/errors.js';
import { formatPath, measureValue } from '../lib/bounded-json.js';
import { cloneJson } from '../lib/json-clone.js';
import { ObjectMetaSchema } from './common.js';
import type { FieldCauseLike, KindDeclaration, KubeObject, ObjectMeta } from './types.js';

// ajv-formats is CommonJS (`module.exports = plugin`); TypeScript under NodeNext types its default import as the
// module object, but at runtime it is the plugin function itself.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface ValidateOptions {
  /** kube's `fieldValidation` query parameter (default Strict, as kubectl ≥1.27 asks for). */
  fieldValidation?: FieldValidation;
  /** The stored object, on update: passed to the kind's semantic `validate` hook. */
  old?: KubeObject;
}

export interface ValidationResult {
  /** Field errors (422 Invalid). Unknown fields are never here: see `unknownFields`. */
  causes: ErrorCause[];
  /** With fieldValidation=Warn: `unknown field "spec.foo"`, for the `Warning` response header. */
  warnings: string[];
  /**
   * With fieldValidation=Strict: paths of unknown fields (`spec.foo`, `spec.cpus[0].bar`). kube answers these
   * with 400 BadRequest `strict decoding error: unknown field "spec.foo", unknown field "…"`.
   */
  unknownFields: string[];
  /** The object without unknown fields, schema defaults filled and `normalize` applied (when valid). */
  pruned: KubeObject;
}

export type Validator = (obj: unknown, opts?: ValidateOptions) => ValidationResult;

// ---------------------------------------------------------------------------------------------------------
// Field errors in kube's words (k8s.io/apimachinery/pkg/util/validation/field).

/** A cause that names its field: usable both as an ErrorCause and as a kind hook's FieldCauseLike. */
export type FieldError = ErrorCause & { field: string };

function formatValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const s = JSON.stringify(value);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

export function fieldInvalid(field: string, value: unknown, detail: string): FieldError {
  return { reason: 'FieldValueInvalid', field, message: `Invalid value: ${formatValue(value)}: ${detail}` };
}
export function fieldTypeInvalid(field: string, value: unknown, detail: string): FieldError {
  return { reason: 'FieldValueTypeInvalid', field, message: `Invalid value: ${formatValue(value)}: ${detail}` };
}
export function fieldRequired(field: string, detail = ''): FieldError {
  return { reason: 'FieldValueRequired', field, message: detail ? `Required value: ${detail}` : 'Required value' };
}
export function fieldNotSupported(field: string, value: unknown, supported: readonly unknown[]): FieldError {
  const list = supported.map((v) => formatValue(v)).join(', ');
  return { reason: 'FieldValueNotSupported', field, message: `Unsupported value: ${formatValue(value)}: supported values: ${list}` };
}
export function fieldForbidden(field: string, detail: string): FieldError {
  return { reason: 'FieldValueForbidden', field, message: `Forbidden: ${detail}` };
}
export function fieldTooLong(field: string, max: number): FieldError {
  return { reason: 'FieldValueTooLong', field, message: `Too long: may not be more than ${max} bytes` };
}
export function fieldTooMany(field: string, actual: number, max: number): FieldError {
  return { reason: 'FieldValueTooMany', field, message: `Too many: ${actual}: must have at most ${max} items` };
}
export function fieldDuplicate(field: string, value: unknown): FieldError {
  return { reason: 'FieldValueDuplicate', field, message: `Duplicate value: ${formatValue(value)}` };
}

/** `spec.cpus` + 0 → `spec.cpus[0]`; `data` + `a.b` → `data[a.b]` (kube's fldPath.Index / fldPath.Key). */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key)) return parent ? `${parent}.${key}` : key;
  return `${parent}[${key}]`;
}

// ---------------------------------------------------------------------------------------------------------
// Name rules (k8s.io/apimachinery/pkg/util/validation). Each returns messages; empty = valid.

function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`;
  let out = `${msg} (e.g. `;
  examples.forEach((e, i) => {
    if (i > 0) out += ' or ';
    out += `'${e}', `;
  });
  return `${out}regex used for validation is '${fmt}')`;
}
const maxLenError = (n: number): string => `must be no more than ${n} characters`;

const dns1123LabelFmt = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const dns1123SubdomainFmt = `${dns1123LabelFmt}(\\.${dns1123LabelFmt})*`;
const qualifiedNameFmt = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const labelValueFmt = `(${qualifiedNameFmt})?`;
const configKeyFmt = '[-._a-zA-Z0-9]+';
const dns1123LabelRe = new RegExp(`^${dns1123LabelFmt}$`);
const dns1123SubdomainRe = new RegExp(`^${dns1123SubdomainFmt}$`);
const qualifiedNameRe = new RegExp(`^${qualifiedNameFmt}$`);
const labelValueRe = new RegExp(`^${labelValueFmt}$`);
const configKeyRe = new RegExp(`^${configKeyFmt}$`);

export function isDns1123Label(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push(maxLenError(63));
  if (!dns1123LabelRe.test(value)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        dns1123LabelFmt,
        'my-name',
        '123-abc',
      ),
    );
  }
  return errs;
}

export function isDns1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 253) errs.push(maxLenError(253));
  if (!dns1123SubdomainRe.test(value)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        dns1123SubdomainFmt,
        'example.com',
      ),
    );
  }
  return errs;
}

const qualifiedNameErrMsg =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/** A label key, annotation key or finalizer: `[prefix/]name`. */
export function isQualifiedName(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split('/');
  let name: string;
  if (parts.length === 1) {
    name = parts[0]!;
  } else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else for (const m of isDns1123Subdomain(prefix)) errs.push(`prefix part ${m}`);
  } else {
    return [
      `a qualified name ${regexError(qualifiedNameErrMsg, qualifiedNameFmt, 'MyName', 'my.name', '123-abc')}` +
        " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push(`name part ${maxLenError(63)}`);
  if (!qualifiedNameRe.test(name)) {
    errs.push(`name part ${regexError(qualifiedNameErrMsg, qualifiedNameFmt, 'MyName', 'my.name', '123-abc')}`);
  }
  return errs;
}

export function isValidLabelValue(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push(maxLenError(63));
  if (!labelValueRe.test(value)) {
    errs.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        labelValueFmt,
        'MyValue',
        'my_value',
        '12345',
      ),
    );
  }
  return errs;
}

/** A ConfigMap/Secret data key. */
export function isConfigKey(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 253) errs.push(maxLenError(253));
  if (!configKeyRe.test(value)) {
    errs.push(
      regexError("a valid config key must consist of alphanumeric characters, '-', '_' or '.'", configKeyFmt, 'key.name', 'KEY_NAME', 'key-name'),
    );
  }
  if (value === '.') errs.push("must not be '.'");
  else if (value === '..') errs.push("must not be '..'");
  else if (value.startsWith('..')) errs.push("must not start with '..'");
  return errs;
}

const totalAnnotationSizeLimit = 256 * 1024;
const standardFinalizers = new Set(['kubernetes', 'orphan', 'foregroundDeletion']);

/** kube's ValidateObjectMeta, for the rules that do not need the stored object. */
export function validateObjectMeta(meta: ObjectMeta, kind: Pick<KindDeclaration, 'scope' | 'nameRule'>): ErrorCause[] {
  const causes: ErrorCause[] = [];
  const nameRule = kind.nameRule === 'label' ? isDns1123Label : isDns1123Subdomain;
  if (meta.generateName) {
    // A prefix: a trailing '-' is allowed, the random suffix will follow it.
    const prefix = meta.generateName.replace(/-$/, '');
    if (prefix) for (const m of nameRule(prefix)) causes.push(fieldInvalid('metadata.generateName', meta.generateName, m));
  }
  if (!meta.name) {
    if (!meta.generateName) causes.push(fieldRequired('metadata.name', 'name or generateName is required'));
  } else {
    for (const m of nameRule(meta.name)) causes.push(fieldInvalid('metadata.name', meta.name, m));
  }
  if (kind.scope === 'Namespaced') {
    if (!meta.namespace) causes.push(fieldRequired('metadata.namespace'));
    else for (const m of isDns1123Label(meta.namespace)) causes.push(fieldInvalid('metadata.namespace', meta.namespace, m));
  } else if (meta.namespace) {
    causes.push(fieldForbidden('metadata.namespace', 'not allowed on this type'));
  }
  if (meta.generation !== undefined && meta.generation < 0) {
    causes.push(fieldInvalid('metadata.generation', meta.generation, 'must be greater than or equal to 0'));
  }
  for (const [k, v] of Object.entries(meta.labels ?? {})) {
    for (const m of isQualifiedName(k)) causes.push(fieldInvalid('metadata.labels', k, m));
    for (const m of isValidLabelValue(v)) causes.push(fieldInvalid('metadata.labels', v, m));
  }
  let annotationBytes = 0;
  for (const [k, v] of Object.entries(meta.annotations ?? {})) {
    for (const m of isQualifiedName(k.toLowerCase())) causes.push(fieldInvalid('metadata.annotations', k, m));
    annotationBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (annotationBytes > totalAnnotationSizeLimit) causes.push(fieldTooLong('metadata.annotations', totalAnnotationSizeLimit));
  (meta.finalizers ?? []).forEach((f, i) => {
    const field = `metadata.finalizers[${i}]`;
    const errs = isQualifiedName(f);
    for (const m of errs) causes.push(fieldInvalid(field, f, m));
    if (errs.length === 0 && !f.includes('/') && !standardFinalizers.has(f)) {
      causes.push(fieldInvalid(field, f, 'name is neither a standard finalizer name nor is it fully qualified'));
    }
  });
  const controllers: string[] = [];
  (meta.ownerReferences ?? []).forEach((ref, i) => {
    const field = `metadata.ownerReferences[${i}]`;
    if (!ref.apiVersion) causes.push(fieldInvalid(`${field}.apiVersion`, ref.apiVersion ?? '', 'version must not be empty'));
    if (!ref.kind) causes.push(fieldInvalid(`${field}.kind`, ref.kind ?? '', 'kind must not be empty'));
    if (!ref.name) causes.push(fieldInvalid(`${field}.name`, ref.name ?? '', 'name must not be empty'));
    if (!ref.uid) causes.push(fieldInvalid(`${field}.uid`, ref.uid ?? '', 'uid must not be empty'));
    if (ref.controller) controllers.push(`${ref.kind}/${ref.name}`);
  });
  if (controllers.length > 1) {
    causes.push(
      fieldInvalid(
        'metadata.ownerReferences',
        meta.ownerReferences,
        `Only one reference can have Controller set to true. Found "true" in references for ${controllers.join(' and ')}`,
      ),
    );
  }
  return causes;
}

// ---------------------------------------------------------------------------------------------------------
// Pruning: kube drops fields a schema does not declare (structural schema pruning) and, with
// fieldValidation=Strict/Warn, reports them by path.

type JsonSchema = {
  type?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  [k: string]: unknown;
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------------------
// Bounds on what is stored. Every reader of an object (the YAML encoder, patches, managed fields, controllers)
// recurses over it, and a write that passes once is read on every GET, LIST and watch after: a bound checked
// only on request bodies is not enough, since patches grow an object a body at a time.

/** How deep a stored object may nest arrays and objects (kinds' own schemas stay under 15). */
export const MAX_OBJECT_DEPTH = 100;
/** How big a stored object may be as JSON: etcd's default request limit (1.5 MiB), which kube objects live within. */
export const MAX_OBJECT_BYTES = 1536 * 1024;

export interface FreeFormLimits {
  /** Levels of arrays and objects inside the field (the field's own object is level 1). */
  maxDepth: number;
  /** Keys and array items inside the field, all levels together. */
  maxEntries: number;
  /** Longest key or string value inside the field. */
  maxStringLength: number;
}

/** Bounds of schema-less fields (`x-kubernetes-preserve-unknown-fields`, e.g. a Workflow action's params). */
export const FREE_FORM_LIMITS: FreeFormLimits = { maxDepth: 32, maxEntries: 10_000, maxStringLength: 64 * 1024 };

// managedFields' fieldsV1 mirrors the object's own field paths (as deep and as wide as the object), and the
// server writes it: only the whole-object bounds apply to it.
const MANAGED_FIELDS_SET = /^metadata\.managedFields\[\d+\]\.fieldsV1$/;

function wholeObjectCause(obj: unknown): ErrorCause | undefined {
  const shape = measureValue(obj, { maxDepth: MAX_OBJECT_DEPTH, maxBytes: MAX_OBJECT_BYTES });
  if (shape.exceeded === 'depth') {
    return {
      reason: 'FieldValueInvalid',
      field: formatPath(shape.at ?? []),
      message: `Invalid value: nested more than ${MAX_OBJECT_DEPTH} levels deep: objects may nest arrays and objects at most ${MAX_OBJECT_DEPTH} levels`,
    };
  }
  if (shape.exceeded === 'bytes') {
    return {
      reason: 'FieldValueTooLong',
      message: `Too long: the object is more than ${MAX_OBJECT_BYTES} bytes as JSON; an object may take at most ${MAX_OBJECT_BYTES} bytes (1.5 MiB)`,
    };
  }
  return undefined;
}

/** What is wrong with a free-form value, if anything: an iterative walk that stops at the first bound passed. */
function freeFormProblem(value: unknown, limits: FreeFormLimits): string | undefined {
  let entries = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length > limits.maxStringLength) return `holds a string of ${v.length} characters; at most ${limits.maxStringLength} are allowed here`;
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth > limits.maxDepth) return `is nested more than ${limits.maxDepth} levels deep; at most ${limits.maxDepth} levels are allowed here`;
    const keys = Array.isArray(v) ? [] : Object.keys(v);
    const children = Array.isArray(v) ? v : keys.map((k) => (v as Record<string, unknown>)[k]);
    entries += children.length;
    if (entries > limits.maxEntries) return `holds more than ${limits.maxEntries} keys and items; at most ${limits.maxEntries} are allowed here`;
    for (const k of keys) {
      if (k.length > limits.maxStringLength) return `has a key of ${k.length} characters; at most ${limits.maxStringLength} are allowed here`;
    }
    for (const c of children) stack.push([c, depth + 1]);
  }
  return undefined;
}

/**
 * Removes (in place) what `schema` does not declare; appends each removed field's path to `unknown`, and a cause
 * to `causes` for each free-form field past FREE_FORM_LIMITS.
 */
function prune(value: unknown, schema: JsonSchema, path: string, unknown: string[], causes: ErrorCause[]): void {
  if (schema['x-kubernetes-preserve-unknown-fields']) {
    const problem = MANAGED_FIELDS_SET.test(path) ? undefined : freeFormProblem(value, FREE_FORM_LIMITS);
    if (problem) causes.push({ reason: 'FieldValueInvalid', field: path || '<root>', message: `Invalid value: a free-form field ${problem}` });
    return;
  }
  if (isPlainObject(value) && (schema.type === 'object' || schema.properties || schema.additionalProperties)) {
    const props = schema.properties ?? {};
    const extra = schema.additionalProperties;
    for (const key of Object.keys(value)) {
      const sub = Object.prototype.hasOwnProperty.call(props, key) ? props[key] : undefined;
      if (sub) prune(value[key], sub, path ? `${path}.${key}` : key, unknown, causes);
      else if (isPlainObject(extra)) prune(value[key], extra, path ? `${path}.${key}` : key, unknown, causes);
      else if (extra !== true) {
        unknown.push(path ? `${path}.${key}` : key);
        delete value[key];
      }
    }
  } else if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => prune(item, schema.items!, `${path}[${i}]`, unknown, causes));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Ajv errors → kube causes (the way apiextensions-apiserver maps kube-openapi's errors).

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** `/spec/cpus/0/count` → `spec.cpus[0].count`, looking at the data to tell list indexes from map keys. */
function fieldPathOf(instancePath: string, root: unknown): string {
  let path = '';
  let cur: unknown = root;
  for (const raw of instancePath.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      path = childPath(path, Number(seg));
      cur = cur[Number(seg)];
    } else {
      path = childPath(path, seg);
      cur = isPlainObject(cur) ? cur[seg] : undefined;
    }
  }
  return path;
}

function causeFromAjv(e: ErrorObject, root: unknown): ErrorCause | undefined {
  const field = fieldPathOf(e.instancePath, root);
  const at = field || '<root>';
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return fieldRequired(childPath(field, String(p.missingProperty)));
    case 'type': {
      const actual = jsonType(e.data);
      return fieldTypeInvalid(at, actual, `${at} in body must be of type ${String(p.type)}: ${JSON.stringify(actual)}`);
    }
    case 'enum':
      return fieldNotSupported(at, e.data, (p.allowedValues as unknown[]) ?? []);
    case 'format':
      return fieldInvalid(at, e.data, `${at} in body must be of type ${String(p.format)}: ${formatValue(e.data)}`);
    case 'pattern':
      return fieldInvalid(at, e.data, `${at} in body should match '${String(p.pattern)}'`);
    case 'minimum':
      return fieldInvalid(at, e.data, `${at} in body should be greater than or equal to ${String(p.limit)}`);
    case 'exclusiveMinimum':
      return fieldInvalid(at, e.data, `${at} in body should be greater than ${String(p.limit)}`);
    case 'maximum':
      return fieldInvalid(at, e.data, `${at} in body should be less than or equal to ${String(p.limit)}`);
    case 'exclusiveMaximum':
      return fieldInvalid(at, e.data, `${at} in body should be less than ${String(p.limit)}`);
    case 'minLength':
      return fieldInvalid(at, e.data, `${at} in body should be at least ${String(p.limit)} chars long`);
    case 'maxLength':
      return fieldTooLong(at, Number(p.limit));
    case 'minItems':
      return fieldInvalid(at, e.data, `${at} in body should have at least ${String(p.limit)} items`);
    case 'maxItems':
      return fieldTooMany(at, Array.isArray(e.data) ? e.data.length : 0, Number(p.limit));
    case 'uniqueItems':
      return fieldDuplicate(at, Array.isArray(e.data) ? e.data[Number(p.i)] : e.data);
    default:
      return fieldInvalid(at, e.data, `${at} in body ${e.message ?? 'is invalid'}`);
  }
}

// ---------------------------------------------------------------------------------------------------------

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true, verbose: true, coerceTypes: false });
addFormats(ajv);

/** The JSON Schema of a whole object of `kind`: apiVersion, kind, ObjectMeta plus the kind's own fields. */
export function fullObjectSchema(kind: KindDeclaration): JsonSchema {
  const own = kind.schema as unknown as JsonSchema & { required?: string[] };
  return {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: ObjectMetaSchema as unknown as JsonSchema,
      ...(own.properties ?? {}),
    },
    required: ['metadata', ...(own.required ?? [])],
  };
}

const cache = new WeakMap<KindDeclaration, Validator>();

export function compileValidator(kind: KindDeclaration): Validator {
  const cached = cache.get(kind);
  if (cached) return cached;
  const schema = fullObjectSchema(kind);
  const check: ValidateFunction = ajv.compile(schema);
  const validator: Validator = (obj, opts = {}) => {
    const mode = opts.fieldValidation ?? 'Strict';
    const causes: ErrorCause[] = [];
    const warnings: string[] = [];
    const unknownFields: string[] = [];
    if (!isPlainObject(obj)) {
      const empty = { apiVersion: '', kind: kind.kind, metadata: {} } as KubeObject;
      return { causes: [fieldTypeInvalid('<root>', jsonType(obj), 'the object must be a JSON object')], warnings, unknownFields, pruned: empty };
    }
    // First, before anything recurses over it (the copy, Ajv, the kind's hooks).
    const tooBig = wholeObjectCause(obj);
    if (tooBig) {
      const empty = { apiVersion: '', kind: kind.kind, metadata: {} } as KubeObject;
      return { causes: [tooBig], warnings, unknownFields, pruned: empty };
    }
    const copy = cloneJson(obj) as KubeObject;
    const unknown: string[] = [];
    prune(copy, schema, '', unknown, causes);
    if (mode === 'Strict') unknownFields.push(...unknown);
    else if (mode === 'Warn') for (const u of unknown) warnings.push(`unknown field ${JSON.stringify(u)}`);

    if (!check(copy)) {
      for (const e of check.errors ?? []) {
        const c = causeFromAjv(e, copy);
        if (c && !causes.some((x) => x.field === c.field && x.message === c.message)) causes.push(c);
      }
    }
    // Name and label rules assume the metadata types are right: skip them while the schema says otherwise.
    if (isPlainObject(copy.metadata) && !causes.some((c) => c.field?.startsWith('metadata'))) {
      causes.push(...validateObjectMeta(copy.metadata, kind));
    }
    if (causes.length === 0 && kind.validate) {
      for (const c of kind.validate(copy, opts.old)) causes.push(toCause(c));
    }
    if (causes.length === 0) kind.normalize?.(copy);
    return { causes, warnings, unknownFields, pruned: copy };
  };
  cache.set(kind, validator);
  return validator;
}

function toCause(c: FieldCauseLike): ErrorCause {
  return { reason: c.reason ?? 'FieldValueInvalid', message: c.message, field: c.field };
}

/** kube's 400 message for unknown fields under fieldValidation=Strict. */
export function strictDecodingMessage(unknownFields: readonly string[]): string {
  return `strict decoding error: ${unknownFields.map((f) => `unknown field ${JSON.stringify(f)}`).join(', ')}`;
}
