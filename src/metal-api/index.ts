// The Equinix-Metal-compatible REST API at /metal/v1: a translation over the kinds, never a second store. A
// device created here is the object `kubectl get devices` shows, and the other way round. Every handler reads
// from informer caches (the store hands events to watchers before it acknowledges a write, so a caller reads its
// own writes) and writes through the registry, so the kube API's rules hold here too.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { namespaceKind } from '../kinds/core.js';
import { deviceKind } from '../kinds/device.js';
import { apiKeyKind } from '../kinds/api-key.js';
import { organizationKind } from '../kinds/organization.js';
import { userKind } from '../kinds/user.js';
import type { KindDeclaration } from '../kinds/types.js';
import { ApiError } from '../lib/errors.js';
import { MetalContext, type MetalDeps } from './context.js';
import { BASE, notImplemented, sendMetalError } from './http.js';
import { metalSpec } from './spec.js';
import { registerProjectRoutes } from './projects.js';
import { registerIdentityRoutes } from './identity.js';

/** A group of routes, registered inside the /metal/v1 scope with the shared context. */
export type MetalRoutes = (app: FastifyInstance, ctx: MetalContext) => void;

export interface MetalApiOptions extends MetalDeps {
  /** Route groups beyond identity and projects (devices, catalog, networking …). */
  routes?: MetalRoutes[];
  /** Kinds those groups read through the context's informers (started before the API serves). */
  kinds?: KindDeclaration[];
}

/** Collapses doubled slashes (older Terraform providers send `/metal/v1//projects`). */
export function collapseMetalPath(url: string): string {
  if (!url.startsWith(BASE)) return url;
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  const rest = q >= 0 ? url.slice(q) : '';
  return path.replace(/\/{2,}/g, '/') + rest;
}

export async function registerMetalApi(app: FastifyInstance, opts: MetalApiOptions): Promise<MetalContext> {
  const ctx = new MetalContext(opts);
  await ctx.ensureIdentity();
  await ctx.start([namespaceKind, deviceKind, apiKeyKind, organizationKind, userKind, ...(opts.kinds ?? [])]);
  await app.register(
    async (scope) => {
      scope.setErrorHandler((err, _req, reply) => sendMetalError(reply, err));
      scope.setNotFoundHandler((req, reply) => notFound(req, reply));
      scope.addHook('onRequest', async (req) => {
        // `X-Consumer-Token` is accepted and ignored, as the original's gateway did.
        req.metal = await ctx.authenticate(req);
      });
      // Every answer is JSON; a 204 has no body.
      scope.addHook('onSend', async (_req, reply, payload) => {
        if (reply.statusCode !== 204 && !reply.hasHeader('content-type')) reply.type('application/json');
        return payload;
      });
      registerIdentityRoutes(scope, ctx);
      registerProjectRoutes(scope, ctx);
      for (const r of opts.routes ?? []) r(scope, ctx);
    },
    { prefix: BASE },
  );
  return ctx;
}

/** An operation of the spec metalplane does not implement is a 501, never a 404 that looks like a missing object. */
function notFound(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const url = req.url.split('?')[0]!;
  const path = url.slice(BASE.length) || '/';
  const op = metalSpec().match(req.method, path);
  if (op) return sendMetalError(reply, notImplemented(`${req.method} ${op.path} (${op.operationId})`));
  const any = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => metalSpec().match(m, path));
  if (any.length) return sendMetalError(reply, new ApiError(405, 'MethodNotAllowed', `${req.method} is not allowed on ${path}; the API offers ${any.join(', ')}`));
  return sendMetalError(reply, ApiError.notFound('path', path));
}
