// Several kube watches over one response (server-sent events), so a browser tab holds one connection however
// many lists it shows. Each watch is what `GET …?watch=true&resourceVersion=…` would be on the kube API: the same
// registry watch, the same authentication and authorization (authz.ts), the same event objects. A client resumes
// after a drop by opening the stream again with each watch's last resourceVersion (bookmarks keep them fresh);
// a watch whose resourceVersion was compacted gets its ERROR (410 Expired) and stops, and the client lists that
// resource again and reopens. Every event is one SSE message: `data: {"id": "<watch id>", "event": <kube event>}`.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { User } from './auth.js';
import { authorize } from './authz.js';
import { encodeEvent } from './kube-api.js';
import type { Registry } from './registry.js';
import { statusFromError, toApiError } from './status.js';
import type { StoredObject } from '../kinds/types.js';
import { ApiError } from '../lib/errors.js';
import type { ObjectWatch } from '../runtime/client.js';

export interface WatchSpec {
  /** The client's name for this watch, echoed in each of its events. */
  id: string;
  group: string;
  version: string;
  resource: string;
  namespace?: string;
  resourceVersion?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export const MAX_WATCHES_PER_STREAM = 32;
const HEARTBEAT_MS = 15_000;

/** Parses and checks the `watches` parameter (a JSON array of WatchSpec). Pure; 400 with what is wrong. */
export function parseWatchSpecs(raw: string | undefined): WatchSpec[] {
  if (raw === undefined || raw === '') throw ApiError.badRequest('the watches parameter is required: a JSON array of {id, group, version, resource, namespace?, resourceVersion?}');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    throw ApiError.badRequest(`the watches parameter is not JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(value) || value.length === 0) throw ApiError.badRequest('the watches parameter must be a non-empty JSON array');
  if (value.length > MAX_WATCHES_PER_STREAM) throw ApiError.badRequest(`at most ${MAX_WATCHES_PER_STREAM} watches per stream, got ${value.length}`);
  const ids = new Set<string>();
  return value.map((v, i) => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw ApiError.badRequest(`watches[${i}] must be an object`);
    const o = v as Record<string, unknown>;
    const str = (k: string, required: boolean): string | undefined => {
      const x = o[k];
      if (x === undefined || (x === '' && !required)) {
        if (required && x === undefined) throw ApiError.badRequest(`watches[${i}].${k} is required`);
        return undefined;
      }
      if (typeof x !== 'string' || x.length > 1024) throw ApiError.badRequest(`watches[${i}].${k} must be a string`);
      return x;
    };
    const spec: WatchSpec = { id: str('id', true)!, group: str('group', true) ?? '', version: str('version', true)!, resource: str('resource', true)! };
    if (ids.has(spec.id)) throw ApiError.badRequest(`watches[${i}].id "${spec.id}" is used twice`);
    ids.add(spec.id);
    const ns = str('namespace', false);
    if (ns !== undefined) spec.namespace = ns;
    const rv = str('resourceVersion', false);
    if (rv !== undefined) spec.resourceVersion = rv;
    const ls = str('labelSelector', false);
    if (ls !== undefined) spec.labelSelector = ls;
    const fs = str('fieldSelector', false);
    if (fs !== undefined) spec.fieldSelector = fs;
    return spec;
  });
}

export interface WatchStreamDeps {
  registry: Registry;
  authenticate: (req: FastifyRequest) => Promise<User>;
  onWatch?: (delta: number, resource: string) => void;
}

export function registerWatchStream(app: FastifyInstance, path: string, deps: WatchStreamDeps): void {
  const { registry } = deps;
  const namespaceKind = registry.kinds.all().find((k) => k.isNamespace);
  const lookupNamespace = async (name: string): Promise<StoredObject | undefined> => (namespaceKind ? registry.get(namespaceKind, undefined, name) : undefined);

  app.get(path, async (req, reply) => {
    const user = await deps.authenticate(req);
    const specs = parseWatchSpecs((req.query as Record<string, string | undefined>).watches);
    // Every watch is resolved and authorized before the stream starts: a mistake is one 4xx, not a half stream.
    const resolved = await Promise.all(
      specs.map(async (s) => {
        const kind = registry.kinds.byResource(s.group, s.version, s.resource);
        if (!kind) throw ApiError.notFound('resource', `${s.resource}${s.group ? '.' + s.group : ''}/${s.version}`);
        if (kind.scope === 'Cluster' && s.namespace !== undefined) throw ApiError.badRequest(`${kind.plural} are cluster-scoped: leave out the namespace of watch "${s.id}"`);
        await authorize(user, { verb: 'watch', kind, namespace: s.namespace }, lookupNamespace);
        return { spec: s, kind };
      }),
    );
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-store, private',
      'X-Content-Type-Options': 'nosniff',
      // Tells proxies not to buffer the stream.
      'X-Accel-Buffering': 'no',
    });
    raw.flushHeaders();
    let closed = false;
    const watches: ObjectWatch[] = [];
    const write = (s: string): void => {
      if (!closed) raw.write(s);
    };
    const finish = (): void => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      for (const w of watches) w.stop();
      for (const r of resolved) deps.onWatch?.(-1, r.kind.plural);
      raw.end();
    };
    const heartbeat = setInterval(() => write(': heartbeat\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    req.raw.on('close', finish);
    raw.on('close', finish);
    raw.on('error', finish);
    const message = (id: string, eventJson: string): string => `data: {"id":${JSON.stringify(id)},"event":${eventJson}}\n\n`;
    for (const { spec, kind } of resolved) {
      deps.onWatch?.(1, kind.plural);
      let stopped = false;
      let w: ObjectWatch | undefined;
      try {
        w = await registry.watch(
          kind,
          {
            namespace: spec.namespace,
            labelSelector: spec.labelSelector,
            fieldSelector: spec.fieldSelector,
            resourceVersion: spec.resourceVersion ?? '',
            allowWatchBookmarks: true,
          },
          (e) => {
            if (stopped) return;
            write(message(spec.id, encodeEvent(e).trimEnd()));
            // Like the kube API, an ERROR (410 Expired) ends that watch; the others go on.
            if (e.type === 'ERROR') {
              stopped = true;
              queueMicrotask(() => w?.stop());
            }
          },
        );
        if (closed || stopped) w.stop();
        watches.push(w);
      } catch (e) {
        write(message(spec.id, JSON.stringify({ type: 'ERROR', object: statusFromError(toApiError(e)) })));
      }
    }
    // Tells the client every watch is open (its lists are live from here).
    write(`event: ready\ndata: {}\n\n`);
  });
}
