// The catalog and capacity of the Metal API: plans (with where they can be had and their price), metros,
// facilities, operating systems, and the capacity reports and checks. A translation over the catalog kinds;
// where a plan can be had and how much of it is left come from the Plan's status, which the capacity controller
// counts from the Hardware — so this and `kubectl get plans` always agree, and a plan the catalog offers in a
// metro without machines is not reported available there.
import type { FastifyInstance } from 'fastify';
import { capacityAt } from '../controllers/capacity/capacity.js';
import { facilityKind } from '../kinds/facility.js';
import { hardwareKind } from '../kinds/hardware.js';
import { metroKind } from '../kinds/metro.js';
import { operatingSystemKind } from '../kinds/operating-system.js';
import { planKind, type PlanStatus } from '../kinds/plan.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import { ApiError } from '../lib/errors.js';
import type { MetalContext } from './context.js';
import { applyExclude, href, inner, isIncluded, jsonBody, q1, shapeOf, unprocessable, type Query, type Shape } from './http.js';
import type { MetalRoutes } from './index.js';

/** The kinds these routes read through the context's informers. */
export const catalogKinds: KindDeclaration[] = [planKind, metroKind, facilityKind, operatingSystemKind, hardwareKind];

const noShape: Shape = { include: {}, exclude: {} };
const byName = (a: StoredObject, b: StoredObject): number => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0);

export interface MetroSpec {
  code: string;
  name: string;
  country: string;
}

export interface FacilitySpec {
  code: string;
  metro: string;
  name: string;
  address?: { address?: string; address2?: string; city?: string; state?: string; zipCode?: string; country: string; coordinates?: { latitude: string; longitude: string } };
  features?: string[];
  ipRanges?: string[];
}

interface PlanSpec {
  slug?: string;
  name?: string;
  description?: string;
  class?: string;
  line?: string;
  type?: 'standard' | 'workload_optimized' | 'custom';
  categories?: string[];
  specs: Record<string, unknown>;
  pricing?: { hour: number; metros?: Record<string, number> };
  deploymentTypes?: string[];
  legacy?: boolean;
}

interface OperatingSystemSpec {
  slug: string;
  name: string;
  distro: string;
  distroLabel?: string;
  version: string;
  provisionableOn: string[];
  licensed?: boolean;
  preinstallable?: boolean;
  pricing?: { hour?: number; perCore?: boolean };
}

// ---------------------------------------------------------------- JSON

export function metroJson(m: StoredObject): Record<string, unknown> {
  const spec = m.spec as MetroSpec;
  return { id: m.metadata.uid, code: spec.code, name: spec.name, country: spec.country, href: href(`/locations/metros/${m.metadata.uid}`).href };
}

export function facilityJson(ctx: MetalContext, f: StoredObject, shape: Shape = noShape): Record<string, unknown> {
  return facilityJsonWith(f, metroByCode(ctx, (f.spec as FacilitySpec).metro), shape);
}

/** A facility as the spec's Facility, given its metro (pure: the device JSON renders it from its own look-ups). */
export function facilityJsonWith(f: StoredObject, metro: StoredObject | undefined, shape: Shape = noShape): Record<string, unknown> {
  const spec = f.spec as FacilitySpec;
  const a = spec.address;
  return applyExclude(
    {
      id: f.metadata.uid,
      href: href(`/facilities/${f.metadata.uid}`).href,
      code: spec.code,
      name: spec.name,
      features: spec.features ?? [],
      ip_ranges: spec.ipRanges ?? [],
      // The spec's Address requires address, zip_code and country: an empty string where the catalog has none.
      address: {
        address: a?.address ?? '',
        ...(a?.address2 ? { address2: a.address2 } : {}),
        ...(a?.city ? { city: a.city } : {}),
        ...(a?.state ? { state: a.state } : {}),
        zip_code: a?.zipCode ?? '',
        country: a?.country ?? ((metro?.spec as MetroSpec | undefined)?.country ?? ''),
        ...(a?.coordinates ? { coordinates: a.coordinates } : {}),
      },
      ...(metro ? { metro: metroJson(metro) } : {}),
    },
    shape,
  );
}

/** Metros (with their price) where the plan can be had now: machines of it exist there and some are free. */
function availableMetros(ctx: MetalContext, plan: StoredObject): Array<{ metro: StoredObject; price: number }> {
  const spec = plan.spec as PlanSpec;
  const st = plan.status as PlanStatus | undefined;
  const out: Array<{ metro: StoredObject; price: number }> = [];
  for (const c of st?.capacity ?? []) {
    const metro = metroByCode(ctx, c.metro);
    if (!metro || c.available <= 0) continue;
    out.push({ metro, price: spec.pricing?.metros?.[c.metro] ?? spec.pricing?.hour ?? 0 });
  }
  return out;
}

function availableFacilities(ctx: MetalContext, plan: StoredObject): Array<{ facility: StoredObject; price: number }> {
  const spec = plan.spec as PlanSpec;
  const st = plan.status as PlanStatus | undefined;
  const out: Array<{ facility: StoredObject; price: number }> = [];
  for (const m of st?.capacity ?? []) {
    for (const f of m.facilities ?? []) {
      const facility = ctx.informer(facilityKind).cache.getByName(undefined, f.facility);
      if (!facility || f.available <= 0) continue;
      out.push({ facility, price: spec.pricing?.metros?.[m.metro] ?? spec.pricing?.hour ?? 0 });
    }
  }
  return out;
}

/** A plan as the spec's Plan without where it is available (pure: what a device's `plan` carries). */
export function planBaseJson(plan: StoredObject): Record<string, unknown> {
  const spec = plan.spec as PlanSpec;
  const slug = spec.slug ?? plan.metadata.name;
  return {
    id: plan.metadata.uid,
    href: href(`/plans/${plan.metadata.uid}`).href,
    slug,
    name: spec.name ?? slug,
    description: spec.description ?? '',
    class: spec.class ?? slug,
    line: spec.line ?? 'baremetal',
    type: spec.type ?? 'standard',
    categories: spec.categories ?? [],
    legacy: spec.legacy === true,
    deployment_types: spec.deploymentTypes ?? ['on_demand'],
    specs: spec.specs,
    pricing: { hour: spec.pricing?.hour ?? 0 },
  };
}

export function planJson(ctx: MetalContext, plan: StoredObject, shape: Shape = noShape): Record<string, unknown> {
  const metros = availableMetros(ctx, plan);
  const facilities = availableFacilities(ctx, plan);
  return applyExclude(
    {
      ...planBaseJson(plan),
      available_in: facilities.map(({ facility, price }) => ({
        ...(isIncluded(shape, 'available_in') ? facilityJson(ctx, facility, inner(shape, 'available_in')) : {}),
        href: href(`/facilities/${facility.metadata.uid}`).href,
        price: { hour: price },
      })),
      available_in_metros: metros.map(({ metro, price }) => ({
        ...(isIncluded(shape, 'available_in_metros') ? metroJson(metro) : {}),
        href: href(`/locations/metros/${metro.metadata.uid}`).href,
        price: { hour: price },
      })),
    },
    shape,
  );
}

export function operatingSystemJson(os: StoredObject): Record<string, unknown> {
  const spec = os.spec as OperatingSystemSpec;
  return {
    id: os.metadata.uid,
    href: href(`/operating-systems/${os.metadata.uid}`).href,
    slug: spec.slug,
    name: spec.name,
    distro: spec.distro,
    distro_label: spec.distroLabel ?? spec.distro,
    version: spec.version,
    provisionable_on: spec.provisionableOn,
    preinstallable: spec.preinstallable === true,
    licensed: spec.licensed === true,
    pricing: spec.pricing?.hour !== undefined ? { hour: spec.pricing.hour, ...(spec.pricing.perCore ? { per_core: true } : {}) } : {},
  };
}

// ---------------------------------------------------------------- look-ups

export function metroByCode(ctx: MetalContext, code: string): StoredObject | undefined {
  return ctx.informer(metroKind).cache.getByName(undefined, code);
}

/** A metro by id or code (case-insensitive: clients send `SV` as the spec's example does), or a 422 naming the known ones. */
export function metroOrUnprocessable(ctx: MetalContext, field: string, value: string): StoredObject {
  const m = ctx.byId(metroKind, value) ?? metroByCode(ctx, value.toLowerCase());
  if (m) return m;
  const known = ctx.list(metroKind).sort(byName).map((x) => x.metadata.name);
  throw unprocessable(`${field}: ${JSON.stringify(value)} is not a metro; known metros: ${known.join(', ')}`);
}

function facilityOrUnprocessable(ctx: MetalContext, field: string, value: string): StoredObject {
  const f = ctx.byId(facilityKind, value) ?? ctx.informer(facilityKind).cache.getByName(undefined, value.toLowerCase());
  if (f) return f;
  const known = ctx.list(facilityKind).sort(byName).map((x) => x.metadata.name);
  throw unprocessable(`${field}: ${JSON.stringify(value)} is not a facility; known facilities: ${known.join(', ')}`);
}

function planOrUnprocessable(ctx: MetalContext, field: string, value: string): StoredObject {
  const p = ctx.byId(planKind, value) ?? ctx.informer(planKind).cache.getByName(undefined, value);
  if (p) return p;
  const known = ctx.list(planKind).sort(byName).map((x) => x.metadata.name);
  throw unprocessable(`${field}: ${JSON.stringify(value)} is not a plan; known plans: ${known.join(', ')}`);
}

const PLAN_TYPES = ['standard', 'workload_optimized', 'custom'];
const PLAN_CATEGORIES = ['compute', 'storage', 'vmce', 'legacy_gen', 'current_gen'];

/** A list parameter, as `a,b` or repeated (`types=a&types=b`), each checked against the values the spec allows. */
export function listQuery(query: Query, name: string, allowed: readonly string[]): string[] | undefined {
  const raw = query[name] ?? query[`${name}[]`];
  if (raw === undefined) return undefined;
  const values = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  const bad = values.filter((v) => !allowed.includes(v));
  if (bad.length) throw unprocessable(`${name}: ${bad.map((b) => JSON.stringify(b)).join(', ')} ${bad.length > 1 ? 'are' : 'is'} not allowed; use ${allowed.join(', ')}`);
  return values;
}

function listPlans(ctx: MetalContext, query: Query): StoredObject[] {
  const type = q1(query, 'type');
  if (type !== undefined && !PLAN_TYPES.includes(type)) throw unprocessable(`type: ${JSON.stringify(type)} is not a plan type; use ${PLAN_TYPES.join(', ')}`);
  const categories = listQuery(query, 'categories', PLAN_CATEGORIES);
  const slug = q1(query, 'slug');
  return ctx
    .list(planKind)
    .filter((p) => {
      const spec = p.spec as PlanSpec;
      if (type !== undefined && (spec.type ?? 'standard') !== type) return false;
      if (slug !== undefined && (spec.slug ?? p.metadata.name) !== slug) return false;
      if (categories && !categories.some((c) => (spec.categories ?? []).includes(c))) return false;
      return true;
    })
    .sort(byName);
}

// ---------------------------------------------------------------- capacity

interface ServerInfo {
  metro?: string;
  facility?: string;
  plan?: string;
  quantity?: string;
}

function quantityOf(i: number, q: string | undefined): number {
  if (q === undefined || !/^[1-9][0-9]{0,5}$/.test(q.trim())) {
    throw unprocessable(`servers[${i}].quantity: must be a whole number of servers from 1, as a string (e.g. "2"), got ${JSON.stringify(q)}`);
  }
  return Number(q.trim());
}

/** `{ where: { plan: { level } } }` for every metro (or facility) and plan: where no machine is, `unavailable`. */
function capacityReport(ctx: MetalContext, by: 'metro' | 'facility'): Record<string, Record<string, { level: string }>> {
  const places = ctx.list(by === 'metro' ? metroKind : facilityKind).sort(byName);
  const plans = ctx.list(planKind).filter((p) => (p.spec as PlanSpec).legacy !== true).sort(byName);
  const out: Record<string, Record<string, { level: string }>> = {};
  for (const place of places) {
    const row: Record<string, { level: string }> = {};
    for (const plan of plans) {
      const where = by === 'metro' ? { metro: place.metadata.name } : { facility: place.metadata.name };
      row[plan.metadata.name] = { level: capacityAt(plan.status as PlanStatus | undefined, where).level };
    }
    out[place.metadata.name] = row;
  }
  return out;
}

function serversOf(body: { servers?: ServerInfo[] }): ServerInfo[] {
  if (!body.servers || body.servers.length === 0) throw unprocessable('servers: list at least one {metro, plan, quantity} to check');
  return body.servers;
}

// ---------------------------------------------------------------- routes

export const registerCatalogRoutes: MetalRoutes = (app: FastifyInstance, ctx: MetalContext) => {
  const plans = (query: Query) => {
    const shape = shapeOf(query);
    return { plans: listPlans(ctx, query).map((p) => planJson(ctx, p, shape)) };
  };
  app.get('/plans', async (req) => plans(req.query as Query));
  app.get('/projects/:id/plans', async (req) => {
    ctx.project(req.metal!, (req.params as { id: string }).id);
    return plans(req.query as Query);
  });

  app.get('/locations/metros', async () => ({ metros: ctx.list(metroKind).sort(byName).map(metroJson) }));
  app.get('/locations/metros/:id', async (req) => {
    const { id } = req.params as { id: string };
    // By id as the spec says, and by code as a convenience (`/locations/metros/da`).
    const m = ctx.byId(metroKind, id) ?? metroByCode(ctx, id.toLowerCase());
    if (!m) throw ApiError.notFound('metro', id);
    return metroJson(m);
  });

  const facilities = (query: Query) => {
    const shape = shapeOf(query);
    return { facilities: ctx.list(facilityKind).sort(byName).map((f) => facilityJson(ctx, f, shape)) };
  };
  app.get('/facilities', async (req) => facilities(req.query as Query));
  app.get('/projects/:id/facilities', async (req) => {
    ctx.project(req.metal!, (req.params as { id: string }).id);
    return facilities(req.query as Query);
  });

  app.get('/operating-systems', async () => ({ operating_systems: ctx.list(operatingSystemKind).sort(byName).map(operatingSystemJson) }));

  app.get('/capacity', async () => ({ capacity: capacityReport(ctx, 'facility') }));
  app.get('/capacity/metros', async () => ({ capacity: capacityReport(ctx, 'metro') }));

  app.post('/capacity/metros', async (req) => {
    const servers = serversOf(jsonBody<{ servers?: ServerInfo[] }>(req, 'CapacityInput'));
    return {
      servers: servers.map((s, i) => {
        if (!s.metro) throw unprocessable(`servers[${i}].metro: required (a metro code or id)`);
        if (!s.plan) throw unprocessable(`servers[${i}].plan: required (a plan slug or id)`);
        const metro = metroOrUnprocessable(ctx, `servers[${i}].metro`, s.metro);
        const plan = planOrUnprocessable(ctx, `servers[${i}].plan`, s.plan);
        const quantity = quantityOf(i, s.quantity);
        const free = capacityAt(plan.status as PlanStatus | undefined, { metro: metro.metadata.name }).available;
        return { metro: s.metro, plan: s.plan, quantity: s.quantity, available: free >= quantity };
      }),
    };
  });

  app.post('/capacity', async (req) => {
    const servers = serversOf(jsonBody<{ servers?: ServerInfo[] }>(req, 'CapacityInput'));
    return {
      servers: servers.map((s, i) => {
        if (!s.facility) throw unprocessable(`servers[${i}].facility: required (a facility code or id); or check a metro with POST /capacity/metros`);
        if (!s.plan) throw unprocessable(`servers[${i}].plan: required (a plan slug or id)`);
        const facility = facilityOrUnprocessable(ctx, `servers[${i}].facility`, s.facility);
        const plan = planOrUnprocessable(ctx, `servers[${i}].plan`, s.plan);
        const quantity = quantityOf(i, s.quantity);
        const free = capacityAt(plan.status as PlanStatus | undefined, { facility: facility.metadata.name }).available;
        return { facility: s.facility, plan: s.plan, quantity: s.quantity, available: free >= quantity };
      }),
    };
  });
};
