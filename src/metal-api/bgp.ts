// BGP in the Metal API: a project's BGP config (BGPConfig `default`), devices' sessions (BGPSession, one per
// address family, named so that a second one cannot be stored), and the neighbor data a device configures its
// BGP speaker with. As the original: the peers are metalplane's routers at 169.254.255.1/.2 (IPv4) and
// fc00::e/fc00::f (IPv6), ASN 65530, multihop, reached from the device's private IPv4 / public IPv6 address.
import type { FastifyInstance } from 'fastify';
import { deviceKind, type DeviceSpec, type DeviceStatus } from '../kinds/device.js';
import { bgpConfigKind, BGP_CONFIG_NAME, PEER_ASN, asnProblem, md5Problem, type BGPConfigSpec } from '../kinds/bgp-config.js';
import { bgpSessionKind, bgpSessionName, type AddressFamily, type BGPSessionSpec } from '../kinds/bgp-session.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import { ApiError, isAlreadyExists } from '../lib/errors.js';
import type { MetalContext, Principal } from './context.js';
import { href, jsonBody, unprocessable } from './http.js';

export const bgpRouteKinds: KindDeclaration[] = [bgpConfigKind, bgpSessionKind];

const PEER_IPS: Record<AddressFamily, string[]> = { ipv4: ['169.254.255.1', '169.254.255.2'], ipv6: ['fc00::e', 'fc00::f'] };

function fieldManager(p: Principal): string {
  return `metal-api/${p.user.metadata.name}`;
}

function sessionsOfDevice(ctx: MetalContext, dev: StoredObject): StoredObject[] {
  return ctx.list(bgpSessionKind, dev.metadata.namespace).filter((s) => (s.spec as BGPSessionSpec).device === dev.metadata.name);
}

function deviceOfSession(ctx: MetalContext, s: StoredObject): StoredObject | undefined {
  return ctx.informer(deviceKind).cache.getByName(s.metadata.namespace, (s.spec as BGPSessionSpec).device);
}

export function bgpSessionJson(ctx: MetalContext, s: StoredObject): Record<string, unknown> {
  const spec = s.spec as BGPSessionSpec;
  const dev = deviceOfSession(ctx, s);
  return {
    id: s.metadata.uid,
    href: href(`/bgp/sessions/${s.metadata.uid}`).href,
    address_family: spec.addressFamily,
    default_route: spec.defaultRoute === true,
    ...(dev ? { device: href(`/devices/${dev.metadata.uid}`) } : {}),
    learned_routes: [],
    // metalplane does not read session state back from the switch (yet): each starts, and stays, "unknown".
    status: 'unknown',
    created_at: s.metadata.creationTimestamp,
    updated_at: s.metadata.creationTimestamp,
  };
}

function bgpConfigJson(ctx: MetalContext, ns: StoredObject, cfg: StoredObject): Record<string, unknown> {
  const spec = cfg.spec as BGPConfigSpec;
  return {
    id: cfg.metadata.uid,
    href: href(`/projects/${ns.metadata.uid}/bgp-config`).href,
    deployment_type: spec.deploymentType,
    asn: spec.asn,
    md5: spec.md5 ?? null,
    max_prefix: spec.maxPrefix ?? 10,
    ...(spec.routeObject ? { route_object: spec.routeObject } : {}),
    status: 'enabled',
    project: href(`/projects/${ns.metadata.uid}`),
    sessions: ctx.list(bgpSessionKind, ns.metadata.name).map((s) => bgpSessionJson(ctx, s)),
    ranges: [],
    created_at: cfg.metadata.creationTimestamp,
    requested_at: cfg.metadata.creationTimestamp,
  };
}

/** The neighbor data of one session (pure over the device, its session and the project's config). */
export function bgpNeighborJson(dev: StoredObject, session: StoredObject, cfg: StoredObject | undefined): Record<string, unknown> {
  const ss = session.spec as BGPSessionSpec;
  const cs = cfg?.spec as BGPConfigSpec | undefined;
  const family = ss.addressFamily === 'ipv6' ? 6 : 4;
  const ip = ((dev.status as DeviceStatus | undefined)?.ipAddresses ?? []).find((i) => i.family === family && i.public === (family === 6));
  return {
    address_family: family,
    ...(cs ? { customer_as: cs.asn } : {}),
    ...(ip ? { customer_ip: ip.address } : {}),
    md5_enabled: cs?.md5 !== undefined,
    ...(cs?.md5 ? { md5_password: cs.md5 } : {}),
    multihop: true,
    peer_as: PEER_ASN,
    peer_ips: PEER_IPS[ss.addressFamily],
    routes_in: ip ? [{ route: `${ip.network}/${ip.cidr}`, exact: false }] : [],
    routes_out: ss.defaultRoute ? [{ route: family === 4 ? '0.0.0.0/0' : '::/0', exact: true }] : [],
  };
}

interface BgpConfigInput {
  deployment_type: 'local' | 'global';
  asn: number;
  md5?: string;
  use_case?: string;
}

export function registerBgpRoutes(app: FastifyInstance, ctx: MetalContext): void {
  const config = (ns: StoredObject): StoredObject | undefined => ctx.informer(bgpConfigKind).cache.getByName(ns.metadata.name, BGP_CONFIG_NAME);

  // Always 200: an empty object while BGP is not enabled, as the original answers.
  app.get('/projects/:id/bgp-config', async (req) => {
    const ns = ctx.project(req.metal!, (req.params as { id: string }).id);
    const cfg = config(ns);
    return cfg ? bgpConfigJson(ctx, ns, cfg) : {};
  });

  app.post('/projects/:id/bgp-configs', async (req, reply) => {
    const p = req.metal!;
    const ns = ctx.project(p, (req.params as { id: string }).id);
    ctx.requireWrite(p);
    const input = jsonBody<BgpConfigInput>(req, 'BgpConfigRequestInput');
    const asn = asnProblem(input.asn);
    if (asn) throw unprocessable(`asn: ${asn}`);
    if (input.md5 !== undefined && input.md5 !== '') {
      const md5 = md5Problem(input.md5);
      if (md5) throw unprocessable(`md5: ${md5}`);
    }
    const spec: BGPConfigSpec = {
      deploymentType: input.deployment_type,
      asn: input.asn,
      ...(input.md5 ? { md5: input.md5 } : {}),
      ...(input.use_case ? { useCase: input.use_case } : {}),
    };
    const cur = config(ns);
    if (cur) {
      // Asking again changes the config (the original's re-request); nothing else changes it.
      await ctx.registry.update(bgpConfigKind, { ...cur, spec: { ...(cur.spec as BGPConfigSpec), ...spec, ...(input.md5 ? {} : { md5: undefined }) } }, { fieldManager: fieldManager(p) });
    } else {
      try {
        await ctx.registry.create(bgpConfigKind, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'BGPConfig', metadata: { name: BGP_CONFIG_NAME, namespace: ns.metadata.name }, spec }, { fieldManager: fieldManager(p) });
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        throw ApiError.conflict('BGP was enabled for this project by another request at the same time; read GET /projects/{id}/bgp-config and ask again to change it');
      }
    }
    return reply.code(204).send();
  });

  app.get('/projects/:id/bgp/sessions', async (req) => {
    const ns = ctx.project(req.metal!, (req.params as { id: string }).id);
    return { bgp_sessions: ctx.list(bgpSessionKind, ns.metadata.name).map((s) => bgpSessionJson(ctx, s)) };
  });

  app.get('/devices/:id/bgp/sessions', async (req) => {
    const { obj: dev } = ctx.objectById(req.metal!, deviceKind, (req.params as { id: string }).id, 'device');
    return { bgp_sessions: sessionsOfDevice(ctx, dev).map((s) => bgpSessionJson(ctx, s)) };
  });

  app.post('/devices/:id/bgp/sessions', async (req, reply) => {
    const p = req.metal!;
    const { obj: dev, project } = ctx.objectById(p, deviceKind, (req.params as { id: string }).id, 'device');
    ctx.requireWrite(p);
    const input = jsonBody<{ address_family?: AddressFamily; default_route?: boolean }>(req, 'BGPSessionInput');
    if (!input.address_family) throw unprocessable('address_family is required: ipv4 or ipv6');
    if (!config(project)) throw unprocessable(`BGP is not enabled for this project: enable it first (POST /projects/${project.metadata.uid}/bgp-configs)`);
    const name = bgpSessionName(dev.metadata.name, input.address_family);
    const hostname = (dev.spec as DeviceSpec).hostname ?? dev.metadata.name;
    // The text "already has session" is what Cluster API's provider and the cloud controller manager look for.
    const already = (): ApiError => unprocessable(`device ${hostname} already has session for address family ${input.address_family}`);
    if (ctx.informer(bgpSessionKind).cache.getByName(dev.metadata.namespace, name)) throw already();
    let s: StoredObject;
    try {
      s = await ctx.registry.create(
        bgpSessionKind,
        {
          apiVersion: 'metalplane.dev/v1alpha1',
          kind: 'BGPSession',
          metadata: { name, namespace: dev.metadata.namespace, ownerReferences: [{ apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', name: dev.metadata.name, uid: dev.metadata.uid }] },
          spec: { device: dev.metadata.name, addressFamily: input.address_family, defaultRoute: input.default_route === true } satisfies BGPSessionSpec,
        },
        { fieldManager: fieldManager(p) },
      );
    } catch (e) {
      if (isAlreadyExists(e)) throw already();
      throw e;
    }
    return reply.code(201).send(bgpSessionJson(ctx, ctx.byId(bgpSessionKind, s.metadata.uid) ?? s));
  });

  app.get('/bgp/sessions/:id', async (req) => {
    const { obj } = ctx.objectById(req.metal!, bgpSessionKind, (req.params as { id: string }).id, 'BGP session');
    return bgpSessionJson(ctx, obj);
  });

  // The spec's body is a bare JSON boolean: the new default_route.
  app.put('/bgp/sessions/:id', async (req) => {
    const p = req.metal!;
    const { obj } = ctx.objectById(p, bgpSessionKind, (req.params as { id: string }).id, 'BGP session');
    ctx.requireWrite(p);
    const raw = (req.body as Buffer | undefined)?.toString('utf8').trim() ?? '';
    let value: unknown;
    try {
      value = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      throw ApiError.badRequest('the request body is not valid JSON: send true or false (the session\'s default_route)');
    }
    if (typeof value !== 'boolean') throw unprocessable('the request body must be true or false: whether the session gets a default route');
    const out = await ctx.registry.update(bgpSessionKind, { ...obj, spec: { ...(obj.spec as BGPSessionSpec), defaultRoute: value } }, { fieldManager: fieldManager(p) });
    return bgpSessionJson(ctx, ctx.byId(bgpSessionKind, out.metadata.uid) ?? out);
  });

  app.delete('/bgp/sessions/:id', async (req, reply) => {
    const p = req.metal!;
    const { obj } = ctx.objectById(p, bgpSessionKind, (req.params as { id: string }).id, 'BGP session');
    ctx.requireWrite(p);
    await ctx.registry.delete(bgpSessionKind, obj.metadata.namespace, obj.metadata.name, { preconditions: { uid: obj.metadata.uid } });
    return reply.code(204).send();
  });

  app.get('/devices/:id/bgp/neighbors', async (req) => {
    const { obj: dev, project } = ctx.objectById(req.metal!, deviceKind, (req.params as { id: string }).id, 'device');
    const cfg = config(project);
    return { bgp_neighbors: sessionsOfDevice(ctx, dev).map((s) => bgpNeighborJson(dev, s, cfg)) };
  });
}
