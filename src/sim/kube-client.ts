// How the simulated datacenter enrolls its machines when it runs as its own process (`metalplane sim`): over
// the server's Kubernetes API, with a bearer token, over HTTPS verified against metalplane's CA — exactly as an
// operator's script with kubectl would. It implements the part of ObjectClient that enrollment uses; kinds come
// from their declarations (src/kinds), so paths are derived, never spelled out here. Errors of the API come back
// as ApiError (from its Status), so the enrollment code handles them as it does the in-process registry's.
import http from 'node:http';
import https from 'node:https';
import { KindRegistry } from '../kinds/index.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import { ApiError, type StatusReason } from '../lib/errors.js';
import type { ListQuery, ObjectClient, ObjectList, WriteOptions } from '../runtime/client.js';

/** What enrollment needs of an API client: the in-process registry has it, and so does KubeHttpClient. */
export type SimApiClient = Pick<ObjectClient, 'kind' | 'get' | 'list' | 'create' | 'mergePatch'>;

export interface KubeHttpClientOptions {
  /** The server's URL, e.g. https://10.0.0.5:7080 (http:// only for a server run with --insecure-http). */
  server: URL;
  token: string;
  /** The CA (PEM) that signed the server's certificate; absent: the system's trust store. */
  ca?: string;
  /** Per request, ms (default 30 000). */
  timeoutMs?: number;
}

/** No HTTP answer from the server: refused, reset, a TLS failure, a timeout. The message says which and what to check. */
export class ServerUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServerUnreachableError';
  }
}

export class KubeHttpClient implements SimApiClient {
  private readonly kinds = new KindRegistry();
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;

  constructor(private readonly opts: KubeHttpClientOptions) {
    if (opts.server.protocol !== 'https:' && opts.server.protocol !== 'http:') throw new Error(`the server URL must be https:// (or http://), not ${opts.server.protocol}`);
    this.agent = opts.server.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 16, ...(opts.ca ? { ca: opts.ca } : {}) }) : new http.Agent({ keepAlive: true, maxSockets: 16 });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  kind(group: string, kindOrPlural: string): KindDeclaration {
    const k = this.kinds.all().find((d) => d.group === group && (d.kind === kindOrPlural || d.plural === kindOrPlural));
    if (!k) throw new Error(`no kind ${kindOrPlural}${group ? `.${group}` : ''} is declared`);
    return k;
  }

  async get(kind: KindDeclaration, namespace: string | undefined, name: string): Promise<StoredObject | undefined> {
    try {
      return (await this.call('GET', this.path(kind, namespace, name))) as StoredObject;
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  async list(kind: KindDeclaration, query: ListQuery = {}): Promise<ObjectList> {
    const q = new URLSearchParams();
    if (query.labelSelector) q.set('labelSelector', query.labelSelector);
    if (query.fieldSelector) q.set('fieldSelector', query.fieldSelector);
    if (query.limit !== undefined) q.set('limit', String(query.limit));
    if (query.continue) q.set('continue', query.continue);
    if (query.resourceVersion !== undefined) q.set('resourceVersion', query.resourceVersion);
    const qs = q.toString();
    const body = (await this.call('GET', `${this.path(kind, query.namespace)}${qs ? `?${qs}` : ''}`)) as {
      items?: StoredObject[];
      metadata?: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
    };
    const out: ObjectList = { items: body.items ?? [], resourceVersion: body.metadata?.resourceVersion ?? '' };
    if (body.metadata?.continue) out.continue = body.metadata.continue;
    if (body.metadata?.remainingItemCount !== undefined) out.remainingItemCount = body.metadata.remainingItemCount;
    return out;
  }

  async create(kind: KindDeclaration, obj: KubeObject, opts: WriteOptions = {}): Promise<StoredObject> {
    return (await this.call('POST', `${this.path(kind, obj.metadata.namespace)}${writeQuery(opts)}`, obj)) as StoredObject;
  }

  async mergePatch(kind: KindDeclaration, namespace: string | undefined, name: string, patch: unknown, opts: WriteOptions = {}): Promise<StoredObject> {
    const sub = opts.subresource ? `/${opts.subresource}` : '';
    return (await this.call('PATCH', `${this.path(kind, namespace, name)}${sub}${writeQuery(opts)}`, patch, 'application/merge-patch+json')) as StoredObject;
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private path(kind: KindDeclaration, namespace: string | undefined, name?: string): string {
    const base = kind.group === '' ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
    const ns = kind.scope === 'Namespaced' && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `${base}${ns}/${kind.plural}${name !== undefined ? `/${encodeURIComponent(name)}` : ''}`;
  }

  /** One request; the parsed JSON of a 2xx, an ApiError (from the answer's Status) otherwise. */
  private call(method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
    const url = new URL(path, this.opts.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${this.opts.token}`, 'user-agent': 'metalplane-sim' };
    if (payload !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(this.unreachable(method, url, err)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = text.trim() === '' ? undefined : (JSON.parse(text) as unknown);
          } catch {
            parsed = undefined;
          }
          if (status >= 200 && status < 300) resolve(parsed);
          else reject(apiErrorOf(method, url, status, parsed, text));
        });
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => reject(this.unreachable(method, url, err)));
      req.end(payload);
    });
  }

  private unreachable(method: string, url: URL, err: unknown): ServerUnreachableError {
    return new ServerUnreachableError(`${method} ${url.origin}${url.pathname}: ${describeTransport(err, url)}`, { cause: err });
  }
}

function writeQuery(opts: WriteOptions): string {
  const q = new URLSearchParams();
  q.set('fieldManager', opts.fieldManager ?? 'metalplane-sim');
  if (opts.dryRun) q.set('dryRun', 'All');
  return `?${q.toString()}`;
}

const REASONS: ReadonlySet<string> = new Set<StatusReason>([
  'BadRequest', 'Unauthorized', 'Forbidden', 'NotFound', 'AlreadyExists', 'Conflict', 'Gone', 'Expired', 'Invalid', 'MethodNotAllowed',
  'NotAcceptable', 'RequestEntityTooLarge', 'UnsupportedMediaType', 'TooManyRequests', 'ServerTimeout', 'Timeout', 'InternalError', 'ServiceUnavailable',
]);

/** The answer's Status as an ApiError, with a hint for the two an operator of `metalplane sim` meets first. */
function apiErrorOf(method: string, url: URL, status: number, body: unknown, text: string): ApiError {
  const s = (typeof body === 'object' && body !== null ? body : {}) as { reason?: unknown; message?: unknown; details?: unknown };
  const reason = typeof s.reason === 'string' && REASONS.has(s.reason) ? (s.reason as StatusReason) : status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : status === 404 ? 'NotFound' : 'InternalError';
  let message = typeof s.message === 'string' ? s.message : text.trim().slice(0, 300) || `HTTP ${status}`;
  if (status === 401) message = `the server refused the token (HTTP 401: ${message}); check --token-file (the server's admin-token) or the kubeconfig's user token`;
  else if (status === 403) message = `the token may not enroll machines (HTTP 403: ${message}); use an operator token such as the server's admin-token`;
  const details = typeof s.details === 'object' && s.details !== null ? (s.details as ApiError['details']) : undefined;
  return new ApiError(status, reason, `${method} ${url.pathname}: ${message}`, details);
}

function describeTransport(err: unknown, url: URL): string {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code === 'ECONNREFUSED') return `connection refused; is metalplane running and listening at ${url.host}?`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve ${url.hostname} (${code})`;
  if (code === 'ETIMEDOUT') return `no answer (${typeof e.message === 'string' ? e.message : code}); is ${url.host} reachable?`;
  if (code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
    return `the server's TLS certificate is not trusted (${code}); pass --ca-file with metalplane's CA (<data-dir>/ca.crt) or --kubeconfig`;
  }
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  return code ? `${msg} (${code})` : msg;
}
