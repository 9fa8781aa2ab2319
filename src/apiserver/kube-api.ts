// The Kubernetes-compatible HTTP surface: /api, /apis, /version, /openapi/v2, /openapi/v3.
// It decodes requests, negotiates content (JSON, YAML, Table), and calls the registry; every error leaves
// as a `Status` from one error handler.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import { apiVersionOf } from '../kinds/types.js';
import { ApiError } from '../lib/errors.js';
import { stringifyYamlSafely } from '../lib/bounded-yaml.js';
import type { ObjectWatch, ObjectWatchEvent } from '../runtime/client.js';
import { namespacePathsOf, parseRequestPath, type RequestInfo } from './request-info.js';
import { aggregatedDiscovery, apiGroupDoc, apiGroupList, apiResourceList, apiVersions, wantsAggregated } from './discovery.js';
import type { Registry } from './registry.js';
import { statusFromError, successStatus, toApiError } from './status.js';
import { toTable } from './table.js';
import { STREAM_ABOVE_ITEMS, streamedList, streamedVersions } from './list-body.js';
import { openApiV2, openApiV3For, openApiV3Index } from './openapi.js';
import type { User } from './auth.js';
import { authorize, verbOf } from './authz.js';
import {
  asObject,
  boolParam,
  decodeBody,
  deleteOptions,
  dryRunParam,
  fieldManagerParam,
  fieldValidationParam,
  includeObjectParam,
  intParam,
  mediaType,
  negotiate,
  PATCH_TYPES,
  q1,
  resourceVersionMatchParam,
  type Negotiated,
  type Query,
} from './request-params.js';

export { MAX_BODY_BYTES } from './request-params.js';

export interface KubeApiDeps {
  registry: Registry;
  /** Returns the authenticated user or throws 401. */
  authenticate: (req: FastifyRequest) => Promise<User>;
  /** host:port clients should use (for /api's serverAddressByClientCIDRs). */
  serverAddress: () => string;
  version: { gitVersion: string; major: string; minor: string };
  /** Called when a watch opens (+1) and closes (-1). */
  onWatch?: (delta: number, resource: string) => void;
  /** How many bytes of live events a watch may have waiting on a slow client before it gets 410 Expired. */
  watchBacklogBytes?: number;
}

/** The default of `watchBacklogBytes`: beyond what the kernel's socket buffers already hold (a few MB). */
export const WATCH_BACKLOG_BYTES = 4 * 1024 * 1024;
/** How long a watch that fell behind keeps its socket for the client to read the 410 before it is destroyed. */
const SLOW_WATCH_LINGER_MS = 30_000;

/** What the request addressed, for metrics and logs. */
export interface KubeRequestInfo {
  verb: string;
  resource: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    kube?: KubeRequestInfo;
  }
}

/** `json`: the body already written as JSON text (JSON.stringify(body)), when the caller has it. */
function send(reply: FastifyReply, code: number, body: unknown, neg?: Negotiated, warnings?: string[], json?: string): FastifyReply {
  if (warnings?.length) {
    reply.header('Warning', warnings.map((w) => `299 - ${JSON.stringify(w)}`));
  }
  // Any stored object renders: too deep for block style, it is written as JSON (which is YAML too).
  if (neg?.yaml) return reply.code(code).type('application/yaml').send(stringifyYamlSafely(body));
  return reply.code(code).type('application/json').send(json ?? JSON.stringify(body));
}

export function sendStatusError(reply: FastifyReply, err: unknown): FastifyReply {
  const e = toApiError(err);
  if (e.code === 401) reply.header('WWW-Authenticate', 'Bearer realm="metalplane"');
  return reply.code(e.code).type('application/json').send(JSON.stringify(statusFromError(e)));
}

export async function registerKubeApi(app: FastifyInstance, deps: KubeApiDeps): Promise<void> {
  const { registry } = deps;
  const kinds = registry.kinds;
  // Discovery documents depend only on the declarations: rendered once, on first request.
  const discoveryCache = new Map<string, string>();
  const cached = (key: string, render: () => object | undefined): string | undefined => {
    let body = discoveryCache.get(key);
    if (body === undefined) {
      const doc = render();
      if (doc === undefined) return undefined;
      discoveryCache.set(key, (body = JSON.stringify(doc)));
    }
    return body;
  };

  // The OpenAPI documents are derived once and served from memory with an ETag.
  const v3Index = openApiV3Index(registry.kinds) as { paths: Record<string, { serverRelativeURL: string }> };
  const v3Docs = new Map<string, string>();
  const v2Doc = JSON.stringify(openApiV2(registry.kinds));
  const v2ETag = '"' + createHash('sha256').update(v2Doc).digest('hex').slice(0, 32) + '"';

  app.setErrorHandler((err, _req, reply) => {
    void sendStatusError(reply, err);
  });
  app.setNotFoundHandler((req, reply) => {
    void sendStatusError(reply, ApiError.notFound('path', req.url.split('?')[0]));
  });

  app.get('/version', async (_req, reply) => {
    return send(reply, 200, {
      major: deps.version.major,
      minor: deps.version.minor,
      gitVersion: deps.version.gitVersion,
      gitCommit: '',
      gitTreeState: 'clean',
      buildDate: '',
      goVersion: `node${process.versions.node}`,
      compiler: 'tsc',
      platform: `${process.platform}/${process.arch}`,
    });
  });

  app.get('/openapi/v2', async (req, reply) => {
    await deps.authenticate(req);
    const accept = String(req.headers.accept ?? '');
    if (accept && !/json|\*\/\*/.test(accept)) {
      throw ApiError.notAcceptable('the OpenAPI v2 document is served as application/json only');
    }
    reply.header('ETag', v2ETag);
    return reply.code(200).type('application/json').send(v2Doc);
  });

  app.get('/openapi/v3', async (req, reply) => {
    await deps.authenticate(req);
    return send(reply, 200, v3Index);
  });

  app.get('/openapi/v3/*', async (req, reply) => {
    await deps.authenticate(req);
    const gvPath = (req.params as { '*': string })['*'];
    let doc = v3Docs.get(gvPath);
    if (doc === undefined) {
      const d = openApiV3For(registry.kinds, gvPath);
      if (!d) throw ApiError.notFound('openapi', gvPath);
      doc = JSON.stringify(d);
      v3Docs.set(gvPath, doc);
    }
    reply.header('Cache-Control', 'public, immutable');
    return reply.code(200).type('application/json').send(doc);
  });

  const namespacePaths = namespacePathsOf(registry.kinds.all());
  const namespaceKind = registry.kinds.all().find((k) => k.isNamespace);
  const lookupNamespace = async (name: string): Promise<StoredObject | undefined> => (namespaceKind ? registry.get(namespaceKind, undefined, name) : undefined);
  const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> => {
    // The request guard authenticated it before the body was read (a handler without the guard asks now).
    const user = req.user ?? (await deps.authenticate(req));
    const info = parseRequestPath(req.url, namespacePaths);
    if (info.type === 'discovery') return serveDiscovery(req, reply, info);
    return serveResource(req, reply, info, user);
  };

  const serveDiscovery = (req: FastifyRequest, reply: FastifyReply, info: Extract<RequestInfo, { type: 'discovery' }>): FastifyReply => {
    if (req.method !== 'GET') throw ApiError.methodNotAllowed(`${req.method} is not allowed on discovery documents`);
    req.kube = { verb: 'get', resource: 'discovery' };
    const json = (body: string, type = 'application/json'): FastifyReply => reply.code(200).type(type).send(body);
    if (info.group === undefined) {
      const agg = wantsAggregated(req.headers.accept);
      if (agg) {
        const body = cached(`${agg} ${info.legacy}`, () => aggregatedDiscovery(kinds, info.legacy, agg))!;
        return json(body, `application/json;g=apidiscovery.k8s.io;v=${agg.split('/')[1]};as=APIGroupDiscoveryList`);
      }
      // /api names the address clients should use, which is known only once the server listens.
      if (info.legacy) return send(reply, 200, apiVersions(deps.serverAddress()));
      return json(cached('groups', () => apiGroupList(kinds))!);
    }
    if (info.version === undefined) {
      const g = cached(`group ${info.group}`, () => apiGroupDoc(kinds, info.group!));
      if (g === undefined) throw ApiError.notFound('group', info.group);
      return json(g);
    }
    const list = cached(`resources ${info.group}/${info.version}`, () => apiResourceList(kinds, info.group!, info.version!));
    if (list === undefined) throw ApiError.notFound('groupversion', info.group ? `${info.group}/${info.version}` : info.version);
    return json(list);
  };

  const serveResource = async (req: FastifyRequest, reply: FastifyReply, info: Extract<RequestInfo, { type: 'resource' }>, user: User): Promise<FastifyReply | void> => {
    const kind = kinds.byResource(info.group, info.version, info.resource);
    if (!kind) {
      throw ApiError.notFound('resource', `${info.resource}${info.group ? '.' + info.group : ''}/${info.version}`);
    }
    if (kind.scope === 'Cluster' && info.namespace !== undefined) {
      throw ApiError.notFound(kind.plural, info.name ?? info.namespace, kind.group);
    }
    const query = req.query as Query;
    const sub = info.subresource;
    if (sub !== undefined) {
      const allowed = sub === 'status' ? kind.statusSubresource : kind.subresources?.[sub] !== undefined;
      if (!allowed) throw ApiError.notFound(`${kind.plural}/${sub}`, info.name ?? '', kind.group);
    }
    const ns = info.namespace;
    const method = req.method;
    // Tenants (Metal API keys) reach only their projects; operator tokens pass (authz.ts).
    if (user.tenant) await authorize(user, { verb: verbOf(method, info.name !== undefined, boolParam(query, 'watch')), kind, namespace: ns, name: info.name, subresource: sub }, lookupNamespace);
    const neg = method === 'GET' ? negotiate(req) : { table: false, yaml: negotiate(req).yaml };
    const warnings: string[] = [];
    const resourceLabel = sub ? `${kind.plural}/${sub}` : kind.plural;

    if (info.name === undefined) {
      if (method === 'GET') {
        if (boolParam(query, 'watch')) {
          req.kube = { verb: 'watch', resource: resourceLabel };
          return serveWatch(req, reply, kind, ns, query, neg);
        }
        req.kube = { verb: 'list', resource: resourceLabel };
        const list = await registry.listVersions(kind, {
          namespace: ns,
          labelSelector: q1(query, 'labelSelector'),
          fieldSelector: q1(query, 'fieldSelector'),
          limit: intParam(query, 'limit'),
          continue: q1(query, 'continue'),
          resourceVersion: q1(query, 'resourceVersion'),
          resourceVersionMatch: resourceVersionMatchParam(query),
        });
        if (neg.table) {
          const t = toTable(kind, list.kvs.map((kv) => registry.decode(kv)), { includeObject: includeObjectParam(query), now: Date.now() }) as { metadata?: Record<string, unknown> };
          t.metadata = { resourceVersion: list.resourceVersion, ...(list.continue ? { continue: list.continue } : {}), ...(list.remainingItemCount !== undefined ? { remainingItemCount: list.remainingItemCount } : {}) };
          if (!neg.yaml && list.kvs.length > STREAM_ABOVE_ITEMS) {
            // The rows are the table's last field: everything before them, then the rows as they are encoded.
            const { rows, ...rest } = t as unknown as { rows: unknown[] };
            const head = JSON.stringify({ ...rest, rows: [] }).slice(0, -2);
            return reply.code(200).type('application/json').send(streamedList(head, rows, (r) => JSON.stringify(r), ']}'));
          }
          return send(reply, 200, t);
        }
        const listMeta = {
          resourceVersion: list.resourceVersion,
          ...(list.continue ? { continue: list.continue } : {}),
          ...(list.remainingItemCount !== undefined ? { remainingItemCount: list.remainingItemCount } : {}),
        };
        if (neg.yaml) {
          return send(reply, 200, { apiVersion: apiVersionOf(kind), kind: `${kind.kind}List`, metadata: listMeta, items: list.kvs.map((kv) => registry.decode(kv)) }, neg);
        }
        // Items are spliced from their stored JSON: no parse/stringify per object (list.10k is a hot path).
        const head = `{"apiVersion":${JSON.stringify(apiVersionOf(kind))},"kind":"${kind.kind}List","metadata":${JSON.stringify(listMeta)},"items":[`;
        if (list.kvs.length > STREAM_ABOVE_ITEMS) {
          return reply.code(200).type('application/json').send(streamedVersions(head, list.kvs, registry.versionWriter, ']}'));
        }
        return reply.code(200).type('application/json').send(head + list.kvs.map((kv) => registry.rawJson(kv)).join(',') + ']}');
      }
      if (method === 'POST') {
        req.kube = { verb: 'create', resource: resourceLabel };
        const obj = asObject(decodeBody(req, true), 'the object');
        if (ns !== undefined) {
          if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== ns) {
            throw ApiError.badRequest(`the namespace of the provided object (${obj.metadata.namespace}) does not match the namespace sent on the request (${ns})`);
          }
          obj.metadata.namespace = ns;
        } else if (kind.scope === 'Namespaced') {
          throw ApiError.methodNotAllowed(`${kind.plural} are namespaced: POST to /…/namespaces/{namespace}/${kind.plural}`);
        }
        const created = await registry.createWithJson(kind, obj, {
          dryRun: dryRunParam(query),
          fieldManager: fieldManagerParam(query, req),
          fieldValidation: fieldValidationParam(query),
          warnings,
        });
        return send(reply, 201, created.object, neg, warnings, created.json);
      }
      if (method === 'DELETE') {
        req.kube = { verb: 'deletecollection', resource: resourceLabel };
        const opts = deleteOptions(req, query);
        const deleted = await registry.deleteCollection(kind, { namespace: ns, labelSelector: q1(query, 'labelSelector'), fieldSelector: q1(query, 'fieldSelector') }, opts);
        return send(reply, 200, { apiVersion: apiVersionOf(kind), kind: `${kind.kind}List`, metadata: {}, items: deleted }, neg);
      }
      throw ApiError.methodNotAllowed(`${method} is not allowed on a collection of ${kind.plural}`);
    }

    const name = info.name;
    if (method === 'GET') {
      req.kube = { verb: 'get', resource: resourceLabel };
      if (boolParam(query, 'watch')) throw ApiError.badRequest('watch is served on the collection: use ?watch=true&fieldSelector=metadata.name=' + name);
      const kv = await registry.getVersion(kind, ns, name);
      if (!kv) throw ApiError.notFound(kind.plural, name, kind.group);
      if (neg.table) return send(reply, 200, toTable(kind, [registry.decode(kv)], { includeObject: includeObjectParam(query), now: Date.now() }));
      if (neg.yaml) return send(reply, 200, registry.decode(kv), neg);
      return reply.code(200).type('application/json').send(registry.rawJson(kv, true));
    }
    if (method === 'PUT') {
      req.kube = { verb: 'update', resource: resourceLabel };
      const obj = asObject(decodeBody(req, true), 'the object');
      if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
        throw ApiError.badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
      }
      if (ns !== undefined && obj.metadata.namespace !== undefined && obj.metadata.namespace !== ns) {
        throw ApiError.badRequest(`the namespace of the object (${obj.metadata.namespace}) does not match the namespace on the URL (${ns})`);
      }
      obj.metadata.name = name;
      if (ns !== undefined) obj.metadata.namespace = ns;
      const updated = await registry.update(kind, obj, {
        dryRun: dryRunParam(query),
        fieldManager: fieldManagerParam(query, req),
        fieldValidation: fieldValidationParam(query),
        warnings,
        subresource: sub,
      });
      return send(reply, 200, updated, neg, warnings);
    }
    if (method === 'PATCH') {
      req.kube = { verb: 'patch', resource: resourceLabel };
      const type = PATCH_TYPES[mediaType(req)];
      if (!type) {
        throw ApiError.unsupportedMediaType(
          `the patch content type "${mediaType(req)}" is not supported; use one of ${Object.keys(PATCH_TYPES).filter((t) => !t.includes('cbor')).join(', ')}`,
        );
      }
      const force = boolParam(query, 'force');
      if (force && type !== 'apply') throw ApiError.badRequest('force is only allowed for apply patches (application/apply-patch+yaml)');
      const body = decodeBody(req, type === 'apply');
      const existed = type === 'apply' ? (await registry.get(kind, ns, name)) !== undefined : true;
      const fieldManager = type === 'apply' ? q1(query, 'fieldManager') : fieldManagerParam(query, req);
      if (type === 'apply' && fieldManager !== undefined) fieldManagerParam(query, req);
      const patched = await registry.patch(kind, ns, name, type, body, {
        dryRun: dryRunParam(query),
        fieldManager,
        fieldValidation: fieldValidationParam(query),
        force,
        warnings,
        subresource: sub,
      });
      return send(reply, existed ? 200 : 201, patched, neg, warnings);
    }
    if (method === 'DELETE') {
      req.kube = { verb: 'delete', resource: resourceLabel };
      if (sub) throw ApiError.methodNotAllowed(`DELETE is not allowed on ${kind.plural}/${sub}`);
      const r = await registry.deleteWithResult(kind, ns, name, deleteOptions(req, query));
      if (r.gone && kind.deleteReturnsStatus) {
        return send(reply, 200, successStatus({ name, kind: kind.plural, uid: r.object.metadata.uid }), neg);
      }
      return send(reply, r.gone ? 200 : 202, r.object, neg);
    }
    throw ApiError.methodNotAllowed(`${method} is not allowed on ${kind.plural}`);
  };

  const serveWatch = async (req: FastifyRequest, reply: FastifyReply, kind: KindDeclaration, ns: string | undefined, query: Query, neg: Negotiated): Promise<void> => {
    const timeoutSeconds = intParam(query, 'timeoutSeconds');
    const includeObject = neg.table ? includeObjectParam(query) : 'Object';
    const sendInitialEvents = boolParam(query, 'sendInitialEvents');
    const rv = q1(query, 'resourceVersion') ?? '';
    if (sendInitialEvents && resourceVersionMatchParam(query) !== 'NotOlderThan') {
      throw ApiError.invalid('ListOptions', '', [{ reason: 'FieldValueInvalid', field: 'resourceVersionMatch', message: 'sendInitialEvents requires resourceVersionMatch=NotOlderThan' }]);
    }
    const raw = reply.raw;
    let tableHeaderSent = false;
    // One serialization per event object and format, shared by every watcher of that kind.
    const encode = (e: ObjectWatchEvent): string => {
      if (neg.table && e.type !== 'ERROR' && e.type !== 'BOOKMARK') {
        const t = toTable(kind, [e.object as StoredObject], { includeObject, now: Date.now() }) as { columnDefinitions?: unknown[] };
        if (tableHeaderSent) t.columnDefinitions = [];
        tableHeaderSent = true;
        return JSON.stringify({ type: e.type, object: t }) + '\n';
      }
      return encodeEvent(e);
    };
    // Events can arrive while the watch is being set up (initial ADDED events, or an ERROR such as 410 Expired
    // for a compacted resourceVersion): they are held until the response headers are out.
    const pending: string[] = [];
    let started = false;
    let closed = false;
    let counted = false;
    let stream: ObjectWatch | undefined;
    let timer: NodeJS.Timeout | undefined;
    // Live events emitted in one turn (one store batch) leave in one write; the flush runs as a microtask, so
    // before any timer or I/O callback could end the stream.
    let turn: string[] = [];
    let flushQueued = false;
    // While the socket pushes back (write() returned false), writes wait here until 'drain'. A watcher whose
    // wait grows past the bound is too far behind: it gets 410 Expired and its stream ends, so it relists,
    // as kube-apiserver's watch cache does with an unresponsive watcher; the others are never held up by it.
    let backlog: string[] | undefined;
    let backlogBytes = 0;
    let lastRv = rv;
    const backlogLimit = deps.watchBacklogBytes ?? WATCH_BACKLOG_BYTES;
    function finish(): void {
      if (closed) return;
      closed = true;
      stream?.stop();
      if (timer) clearTimeout(timer);
      if (counted) deps.onWatch?.(-1, kind.plural);
      if (started) raw.end();
    }
    const write = (chunk: string): void => {
      if (backlog) {
        backlog.push(chunk);
        backlogBytes += chunk.length;
        if (backlogBytes > backlogLimit) expire();
        return;
      }
      if (!raw.write(chunk)) {
        backlog = [];
        raw.once('drain', onDrain);
      }
    };
    function onDrain(): void {
      if (closed || !backlog) return;
      const chunk = backlog.join('');
      backlog = undefined;
      backlogBytes = 0;
      write(chunk);
    }
    const flush = (): void => {
      flushQueued = false;
      if (closed || turn.length === 0) return;
      const chunk = turn.length === 1 ? turn[0] : turn.join('');
      turn = [];
      write(chunk);
    };
    function expire(): void {
      const behind = backlogBytes;
      backlog = undefined;
      backlogBytes = 0;
      turn = [];
      const gone = new ApiError(410, 'Expired', `too old resource version: ${lastRv} (this watch fell ${behind} bytes behind its events; list again and watch from the list's resourceVersion)`);
      raw.write(encodeEvent({ type: 'ERROR', object: statusFromError(gone) as unknown as ObjectWatchEvent['object'] }));
      finish();
      // A client that never reads would hold the socket and what is buffered for it forever.
      setTimeout(() => raw.destroy(), SLOW_WATCH_LINGER_MS).unref();
    }
    stream = await registry.watch(
      kind,
      {
        namespace: ns,
        labelSelector: q1(query, 'labelSelector'),
        fieldSelector: q1(query, 'fieldSelector'),
        resourceVersion: rv,
        allowWatchBookmarks: boolParam(query, 'allowWatchBookmarks'),
        sendInitialEvents,
      },
      (e) => {
        if (closed) return;
        const line = encode(e);
        if (e.type !== 'ERROR') lastRv = (e.object.metadata as { resourceVersion?: string }).resourceVersion ?? lastRv;
        if (!started) pending.push(line);
        else if (e.type === 'ERROR') {
          // What came before the error goes out first, then the error, then the end of the stream.
          turn.push(line);
          flush();
          if (backlog) raw.write(backlog.join(''));
          backlog = undefined;
        } else {
          turn.push(line);
          if (!flushQueued) {
            flushQueued = true;
            queueMicrotask(flush);
          }
        }
        if (e.type === 'ERROR') finish();
      },
    );
    if (closed) stream.stop();
    reply.hijack();
    raw.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Transfer-Encoding': 'chunked',
      'X-Content-Type-Options': 'nosniff',
    });
    raw.flushHeaders();
    started = true;
    // The initial state leaves in one write however large; the backlog bound applies to live events only.
    if (pending.length > 0) {
      const initial = pending.join('');
      pending.length = 0;
      if (!raw.write(initial) && !closed) {
        backlog = [];
        raw.once('drain', onDrain);
      }
    }
    // Like kube-apiserver, an ERROR during setup is sent as the stream's one event, then the stream ends.
    if (closed) {
      raw.end();
      return;
    }
    counted = true;
    deps.onWatch?.(1, kind.plural);
    const limit = timeoutSeconds !== undefined ? timeoutSeconds : 1800 + Math.floor(Math.random() * 1800);
    // setTimeout fires at once for delays beyond 2^31-1 ms, so a huge timeoutSeconds means "about 24 days".
    timer = setTimeout(finish, Math.min(limit * 1000, 2 ** 31 - 1));
    timer.unref();
    req.raw.on('close', finish);
    raw.on('close', finish);
    raw.on('error', finish);
  };

  for (const url of ['/api', '/api/*', '/apis', '/apis/*']) {
    app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url, handler });
  }
}

const encodedEvents = new WeakMap<object, Map<string, string>>();

/** Serializes a watch event once per (object, type), since 1000 watchers may share one event. */
export function encodeEvent(e: ObjectWatchEvent): string {
  let byType = encodedEvents.get(e.object);
  if (!byType) encodedEvents.set(e.object, (byType = new Map()));
  let line = byType.get(e.type);
  if (line === undefined) {
    line = `{"type":"${e.type}","object":${JSON.stringify(e.object)}}\n`;
    byType.set(e.type, line);
  }
  return line;
}
