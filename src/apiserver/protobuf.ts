// Decodes Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`) into the JSON form the
// rest of the API server works with. kubectl's typed clients send protobuf for built-in kinds: `kubectl create
// namespace`, `kubectl create configmap`, `kubectl create secret` POST protobuf (and accept JSON back), so a
// server that only spoke JSON would fail them with 415.
//
// The envelope is the 4-byte magic `k8s\0` followed by a runtime.Unknown message {typeMeta, raw, ...}, `raw`
// being the typed object. Each built-in kind's declaration carries its message (src/kinds/protobuf-wire.ts),
// with the field numbers of k8s.io/api and k8s.io/apimachinery generated.proto. Go's generated marshallers write
// every non-pointer field, zero values included, where JSON would omit them (omitempty): such zero values are
// dropped, while pointer fields (`presence`) keep theirs, e.g. `immutable: false`.
import { ApiError } from '../lib/errors.js';
import type { KindDeclaration } from '../kinds/types.js';
import { apiVersionOf } from '../kinds/types.js';
import { allKinds } from '../kinds/index.js';
import type { ProtobufMessage } from '../kinds/protobuf-wire.js';

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf';

const MAGIC = [0x6b, 0x38, 0x73, 0x00]; // "k8s\0"

type MessageDef = ProtobufMessage;

/** The typed messages of the served built-in kinds, by `apiVersion/kind` as the envelope's TypeMeta names them. */
export function protobufMessages(kinds: readonly KindDeclaration[]): Map<string, MessageDef> {
  const out = new Map<string, MessageDef>();
  for (const k of kinds) if (k.protobuf) out.set(`${apiVersionOf(k)}/${k.kind}`, k.protobuf);
  out.set('meta.k8s.io/v1/DeleteOptions', DeleteOptions);
  out.set('v1/DeleteOptions', DeleteOptions);
  return out;
}

/** Bodies of DELETE requests from typed clients. */
const DeleteOptions: MessageDef = {
  1: { name: 'gracePeriodSeconds', type: 'int', presence: true },
  2: { name: 'preconditions', type: { 1: { name: 'uid', type: 'string', presence: true }, 2: { name: 'resourceVersion', type: 'string', presence: true } } },
  3: { name: 'orphanDependents', type: 'bool', presence: true },
  4: { name: 'propagationPolicy', type: 'string', presence: true },
  5: { name: 'dryRun', type: 'string', repeated: true },
};

let defaultMessages: Map<string, MessageDef> | undefined;

const EnvelopeTypeMeta: MessageDef = { 1: { name: 'apiVersion', type: 'string' }, 2: { name: 'kind', type: 'string' } };

function malformed(why: string): ApiError {
  return ApiError.badRequest(`invalid protobuf request body: ${why}`);
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.buf.length) throw malformed('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
    throw malformed('varint too long');
  }
  bytes(): Uint8Array {
    const len = Number(this.varint());
    if (len < 0 || this.pos + len > this.buf.length) throw malformed('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw malformed(`unsupported wire type ${wireType}`);
    if (this.pos > this.buf.length) throw malformed('truncated field');
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function toText(b: Uint8Array): string {
  try {
    return utf8.decode(b);
  } catch {
    throw malformed('a string field is not valid UTF-8');
  }
}

/** int64 varints are two's complement: values ≥ 2^63 are negative. */
function toInt(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

function timeOf(b: Uint8Array, micro: boolean): string | undefined {
  const t = decodeMessage(b, { 1: { name: 'seconds', type: 'int' }, 2: { name: 'nanos', type: 'int' } }) as { seconds?: number; nanos?: number };
  if (!t.seconds && !t.nanos) return undefined;
  const iso = new Date((t.seconds ?? 0) * 1000).toISOString();
  if (!micro) return iso.replace(/\.\d{3}Z$/, 'Z');
  return iso.replace(/\.\d{3}Z$/, `.${String(Math.floor((t.nanos ?? 0) / 1000)).padStart(6, '0')}Z`);
}

function decodeMap(b: Uint8Array, valueType: 'string' | 'bytes'): [string, string] {
  const r = new Reader(b);
  let key = '';
  let value = '';
  while (!r.done) {
    const tag = Number(r.varint());
    const num = tag >>> 3;
    if ((tag & 7) !== 2 || (num !== 1 && num !== 2)) {
      r.skip(tag & 7);
      continue;
    }
    const v = r.bytes();
    if (num === 1) key = toText(v);
    else value = valueType === 'string' ? toText(v) : Buffer.from(v).toString('base64');
  }
  return [key, value];
}

function isZero(v: unknown): boolean {
  return v === '' || v === 0 || v === false || v === undefined;
}

function decodeMessage(buf: Uint8Array, def: MessageDef): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const r = new Reader(buf);
  while (!r.done) {
    const tag = Number(r.varint());
    const wireType = tag & 7;
    const field = def[tag >>> 3];
    if (!field) {
      r.skip(wireType);
      continue;
    }
    let value: unknown;
    const t = field.type;
    if (t === 'int' || t === 'bool') {
      if (wireType !== 0) throw malformed(`field ${field.name} has wire type ${wireType}, expected a varint`);
      const n = r.varint();
      value = t === 'bool' ? n !== 0n : toInt(n);
    } else {
      if (wireType !== 2) throw malformed(`field ${field.name} has wire type ${wireType}, expected length-delimited`);
      const b = r.bytes();
      if (t === 'string') value = toText(b);
      else if (t === 'bytes') value = Buffer.from(b).toString('base64');
      else if (t === 'time' || t === 'microtime') value = timeOf(b, t === 'microtime');
      else if (t === 'fieldsv1') {
        const raw = decodeMessage(b, { 1: { name: 'raw', type: 'string' } }).raw as string | undefined;
        try {
          value = raw ? JSON.parse(raw) : {};
        } catch {
          throw malformed('managedFields[].fieldsV1 is not JSON');
        }
      } else if ('map' in t) {
        const [k, v] = decodeMap(b, t.map as 'string' | 'bytes');
        const m = (out[field.name] ??= {}) as Record<string, string>;
        m[k] = v;
        continue;
      } else value = decodeMessage(b, t);
    }
    if (field.repeated) {
      ((out[field.name] ??= []) as unknown[]).push(value);
      continue;
    }
    if (!field.presence && (isZero(value) || (typeof value === 'object' && value !== null && Object.keys(value).length === 0))) continue;
    if (value === undefined) continue;
    out[field.name] = value;
  }
  return out;
}

/**
 * Decodes a `k8s\0`-prefixed protobuf body into the object's JSON form (apiVersion and kind from the envelope).
 * Kinds without a known message are refused with 415, as a server that cannot decode them should.
 */
export function decodeProtobufObject(body: Uint8Array, messages: ReadonlyMap<string, MessageDef> = (defaultMessages ??= protobufMessages(allKinds))): Record<string, unknown> {
  if (body.length < MAGIC.length || MAGIC.some((b, i) => body[i] !== b)) throw malformed('missing the "k8s\\0" prefix');
  // runtime.Unknown: typeMeta = 1, raw = 2, contentEncoding = 3, contentType = 4.
  const r = new Reader(body.subarray(MAGIC.length));
  let typeMeta: { apiVersion?: string; kind?: string } = {};
  let raw: Uint8Array = new Uint8Array();
  while (!r.done) {
    const tag = Number(r.varint());
    const num = tag >>> 3;
    if ((tag & 7) !== 2 || num < 1 || num > 4) {
      r.skip(tag & 7);
      continue;
    }
    const b = r.bytes();
    if (num === 1) typeMeta = decodeMessage(b, EnvelopeTypeMeta);
    else if (num === 2) raw = b;
    else if (num === 3 && b.length > 0) throw ApiError.unsupportedMediaType(`protobuf content encoding "${toText(b)}" is not supported`);
  }
  const apiVersion = typeMeta.apiVersion ?? '';
  const kind = typeMeta.kind ?? '';
  const def = messages.get(`${apiVersion}/${kind}`);
  if (!def) {
    throw ApiError.unsupportedMediaType(
      `protobuf bodies are supported for ${[...messages.keys()].join(', ')}; send ${apiVersion || '?'}/${kind || '?'} as application/json`,
    );
  }
  const obj = decodeMessage(raw, def);
  return kind === 'DeleteOptions' ? obj : { apiVersion, kind, ...obj };
}
