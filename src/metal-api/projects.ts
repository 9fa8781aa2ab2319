// Projects and organizations: a project is a namespace (project id = the namespace's uid), its display name —
// any text, as users typed it — kept beside the DNS-safe namespace name in an annotation, its organization in a
// label. `kubectl get namespaces` shows the same projects.
import type { FastifyInstance } from 'fastify';
import type { KubeObject, StoredObject } from '../kinds/types.js';
import { namespaceKind } from '../kinds/core.js';
import { deviceKind } from '../kinds/device.js';
import { ORGANIZATION_LABEL, organizationKind, type OrganizationSpec } from '../kinds/organization.js';
import type { ApiError } from '../lib/errors.js';
import { DISPLAY_NAME_ANNOTATION, type MetalContext, type Principal } from './context.js';
import { applyExclude, href, inner, isIncluded, jsonBody, matchesSearch, paginate, q1, shapeOf, type Query, type Shape, unprocessable, cmp } from './http.js';

const TAGS_ANNOTATION = 'metalplane.dev/tags';
const CUSTOMDATA_ANNOTATION = 'metalplane.dev/customdata';

function jsonAnnotation<T>(obj: StoredObject, name: string, fallback: T): T {
  const v = obj.metadata.annotations?.[name];
  if (v === undefined) return fallback;
  try {
    return JSON.parse(v) as T;
  } catch {
    return fallback;
  }
}

export function projectName(ns: StoredObject): string {
  return ns.metadata.annotations?.[DISPLAY_NAME_ANNOTATION] ?? ns.metadata.name;
}

export function projectHref(ns: StoredObject): { href: string } {
  return href(`/projects/${ns.metadata.uid}`);
}

export function organizationJson(ctx: MetalContext, org: StoredObject, shape: Shape = { include: {}, exclude: {} }): Record<string, unknown> {
  const spec = org.spec as OrganizationSpec;
  const projects = ctx.list(namespaceKind).filter((ns) => ctx.isProject(ns) && ctx.organizationOf(ns) === org.metadata.name);
  return applyExclude(
    {
      id: org.metadata.uid,
      href: href(`/organizations/${org.metadata.uid}`).href,
      name: spec.displayName,
      description: spec.description ?? '',
      website: spec.website ?? '',
      twitter: spec.twitter ?? '',
      created_at: org.metadata.creationTimestamp,
      updated_at: org.metadata.creationTimestamp,
      customdata: {},
      projects: isIncluded(shape, 'projects') ? projects.map((p) => projectJson(ctx, p, inner(shape, 'projects'), { nested: true })) : projects.map(projectHref),
      members: [],
      memberships: [],
    },
    shape,
  );
}

/**
 * A project as the spec's Project. `nested`: rendered inside another object (a device's `include=project`), where
 * its device list is left out unless asked for (`include=project.devices`) — a list of 1000 devices that each
 * carried their project's 1000 device hrefs would be a million references.
 */
export function projectJson(ctx: MetalContext, ns: StoredObject, shape: Shape = { include: {}, exclude: {} }, opts: { nested?: boolean } = {}): Record<string, unknown> {
  const id = ns.metadata.uid;
  const org = ctx.organizationByName(ctx.organizationOf(ns));
  const devices = !opts.nested || isIncluded(shape, 'devices') ? ctx.list(deviceKind, ns.metadata.name) : undefined;
  return applyExclude(
    {
      id,
      href: href(`/projects/${id}`).href,
      name: projectName(ns),
      created_at: ns.metadata.creationTimestamp,
      updated_at: ns.metadata.creationTimestamp,
      customdata: jsonAnnotation(ns, CUSTOMDATA_ANNOTATION, {}),
      tags: jsonAnnotation<string[]>(ns, TAGS_ANNOTATION, []),
      type: 'default',
      // The spec has a project's organization as an object (the SDKs decode it so); expanded only when asked.
      organization: org ? (isIncluded(shape, 'organization') ? organizationJson(ctx, org, inner(shape, 'organization')) : { id: org.metadata.uid, href: href(`/organizations/${org.metadata.uid}`).href }) : undefined,
      ...(devices ? { devices: devices.map((d) => href(`/devices/${d.metadata.uid}`)) } : {}),
      members: [],
      memberships: [],
      invitations: [],
      ssh_keys: [],
      volumes: [],
      bgp_config: href(`/projects/${id}/bgp-config`),
      network_status: {},
      max_devices: {},
    },
    shape,
  );
}

/** A DNS-1123 label from a display name: `My Project!` → `my-project`, unique among namespaces. */
function namespaceNameFor(ctx: MetalContext, display: string): string {
  let base = display
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50)
    .replace(/-+$/, '');
  if (!base || !/^[a-z]/.test(base)) base = `project-${base}`.replace(/-+$/, '');
  let name = base;
  for (let i = 2; ctx.registryNamespace(name); i++) name = `${base}-${i}`;
  return name;
}

interface ProjectInput {
  name: string;
  organization_id?: string;
  customdata?: Record<string, unknown>;
  tags?: string[];
  type?: string;
  payment_method_id?: string;
  backend_transfer_enabled?: boolean;
}

function checkDisplayName(name: string): void {
  // The original refuses characters encoded in more than 3 bytes (emoji), and an empty or all-blank name.
  if (!name.trim()) throw unprocessable('name: must not be blank');
  for (const ch of name) if (Buffer.byteLength(ch) > 3) throw unprocessable(`name: must not contain characters encoded in more than 3 bytes (such as emoji), found ${JSON.stringify(ch)}`);
}

async function createProject(ctx: MetalContext, p: Principal, input: ProjectInput, orgName: string): Promise<StoredObject> {
  checkDisplayName(input.name);
  if (input.type === 'vmce') throw unprocessable('type: vmce projects are not offered; use type default');
  const annotations: Record<string, string> = { [DISPLAY_NAME_ANNOTATION]: input.name };
  if (input.tags) annotations[TAGS_ANNOTATION] = JSON.stringify(input.tags);
  if (input.customdata) annotations[CUSTOMDATA_ANNOTATION] = JSON.stringify(input.customdata);
  for (let attempt = 0; ; attempt++) {
    const obj: KubeObject = {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespaceNameFor(ctx, input.name), labels: { [ORGANIZATION_LABEL]: orgName }, annotations },
    };
    try {
      return await ctx.registry.create(namespaceKind, obj, { fieldManager: `metal-api/${p.user.metadata.name}` });
    } catch (e) {
      // Two creates of the same name at once: the loser takes the next free name.
      if ((e as ApiError).reason === 'AlreadyExists' && attempt < 5) continue;
      throw e;
    }
  }
}

function orgForCreate(ctx: MetalContext, p: Principal, orgId: string | undefined): StoredObject {
  if (orgId) return ctx.organization(p, orgId);
  const mine = ctx.list(organizationKind).filter((o) => ctx.canSeeOrganization(p, o));
  const dflt = mine.find((o) => o.metadata.name === 'default') ?? mine[0];
  if (!dflt) throw unprocessable('organization_id: you are a member of no organization; name one');
  return dflt;
}

function listProjects(ctx: MetalContext, p: Principal, query: Query, filter: (ns: StoredObject) => boolean): StoredObject[] {
  const name = q1(query, 'name');
  const search = q1(query, 'search');
  return ctx
    .projects(p)
    .filter(filter)
    .filter((ns) => name === undefined || projectName(ns) === name)
    .filter((ns) => matchesSearch(search, projectName(ns), ns.metadata.name))
    .sort((a, b) => cmp(a.metadata.creationTimestamp, b.metadata.creationTimestamp) || cmp(a.metadata.name, b.metadata.name));
}

export function registerProjectRoutes(app: FastifyInstance, ctx: MetalContext): void {
  app.get('/projects', async (req) => {
    const query = req.query as Query;
    const page = paginate(listProjects(ctx, req.metal!, query, () => true), query, '/projects');
    const shape = shapeOf(query);
    return { projects: page.items.map((ns) => projectJson(ctx, ns, shape)), meta: page.meta };
  });

  app.post('/projects', async (req, reply) => {
    const p = req.metal!;
    ctx.requireWrite(p);
    ctx.requireUserKey(p, 'create projects');
    const input = jsonBody<ProjectInput>(req, 'ProjectCreateFromRootInput');
    const org = orgForCreate(ctx, p, input.organization_id);
    const ns = await createProject(ctx, p, input, org.metadata.name);
    return reply.code(201).send(projectJson(ctx, await settled(ctx, ns), shapeOf(req.query as Query)));
  });

  app.get('/projects/:id', async (req) => {
    const { id } = req.params as { id: string };
    return projectJson(ctx, ctx.project(req.metal!, id), shapeOf(req.query as Query));
  });

  app.put('/projects/:id', async (req) => {
    const p = req.metal!;
    const { id } = req.params as { id: string };
    const ns = ctx.project(p, id);
    ctx.requireWrite(p);
    const input = jsonBody<Partial<ProjectInput>>(req, 'ProjectUpdateInput');
    if (input.name !== undefined) checkDisplayName(input.name);
    const annotations: Record<string, string | null> = {};
    if (input.name !== undefined) annotations[DISPLAY_NAME_ANNOTATION] = input.name;
    if (input.tags !== undefined) annotations[TAGS_ANNOTATION] = JSON.stringify(input.tags);
    if (input.customdata !== undefined) annotations[CUSTOMDATA_ANNOTATION] = JSON.stringify(input.customdata);
    const out = await ctx.registry.mergePatch(namespaceKind, undefined, ns.metadata.name, { metadata: { annotations } }, { fieldManager: `metal-api/${p.user.metadata.name}` });
    return projectJson(ctx, await settled(ctx, out), shapeOf(req.query as Query));
  });

  app.delete('/projects/:id', async (req, reply) => {
    const p = req.metal!;
    const { id } = req.params as { id: string };
    const ns = ctx.project(p, id);
    ctx.requireWrite(p);
    ctx.requireUserKey(p, 'delete its project');
    const devices = ctx.list(deviceKind, ns.metadata.name);
    if (devices.length) {
      throw unprocessable(`the project still has ${devices.length} device${devices.length > 1 ? 's' : ''} (${devices.slice(0, 5).map((d) => d.metadata.name).join(', ')}${devices.length > 5 ? ', …' : ''}): delete them first`);
    }
    await ctx.registry.delete(namespaceKind, undefined, ns.metadata.name);
    return reply.code(204).send();
  });

  // ---------------------------------------------------------------- organizations

  app.get('/organizations', async (req) => {
    const p = req.metal!;
    ctx.requireUserKey(p, 'list organizations');
    const query = req.query as Query;
    const search = q1(query, 'search');
    const orgs = ctx
      .list(organizationKind)
      .filter((o) => ctx.canSeeOrganization(p, o))
      .filter((o) => matchesSearch(search, (o.spec as OrganizationSpec).displayName))
      .sort((a, b) => cmp(a.metadata.creationTimestamp, b.metadata.creationTimestamp));
    const page = paginate(orgs, query, '/organizations');
    const shape = shapeOf(query);
    return { organizations: page.items.map((o) => organizationJson(ctx, o, shape)), meta: page.meta };
  });

  app.get('/organizations/:id', async (req) => {
    const p = req.metal!;
    ctx.requireUserKey(p, 'read organizations');
    const { id } = req.params as { id: string };
    return organizationJson(ctx, ctx.organization(p, id), shapeOf(req.query as Query));
  });

  app.get('/organizations/:id/projects', async (req) => {
    const p = req.metal!;
    ctx.requireUserKey(p, 'read organizations');
    const { id } = req.params as { id: string };
    const org = ctx.organization(p, id);
    const query = req.query as Query;
    const page = paginate(listProjects(ctx, p, query, (ns) => ctx.organizationOf(ns) === org.metadata.name), query, `/organizations/${id}/projects`);
    const shape = shapeOf(query);
    return { projects: page.items.map((ns) => projectJson(ctx, ns, shape)), meta: page.meta };
  });

  app.post('/organizations/:id/projects', async (req, reply) => {
    const p = req.metal!;
    ctx.requireWrite(p);
    ctx.requireUserKey(p, 'create projects');
    const { id } = req.params as { id: string };
    const org = ctx.organization(p, id);
    const input = jsonBody<ProjectInput>(req, 'ProjectCreateInput');
    const ns = await createProject(ctx, p, input, org.metadata.name);
    return reply.code(201).send(projectJson(ctx, await settled(ctx, ns), shapeOf(req.query as Query)));
  });
}

/**
 * The informer copy of an object we just wrote. The store hands events to watchers before it acknowledges a
 * write, so it is there already; the fallback keeps the answer right even if that ever changed.
 */
export async function settled(ctx: MetalContext, written: StoredObject): Promise<StoredObject> {
  return ctx.byId(namespaceKind, written.metadata.uid) ?? written;
}

