// Devices on the Metal API: create (one, or a batch) in a project, list (project, organization) with the
// spec's filters, read, update, delete, actions (the `metalplane.dev/action` annotation the device controller
// carries out), and a device's IPs, events, user data, custom data and SSH keys. Every read is from the
// informer caches and scoped to the caller's projects; every write goes through the registry, so the kind's
// validation and the kube API's rules hold here too.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { eventKind, secretKind } from '../kinds/core.js';
import { cloudConfigKind, type CloudConfigStatus } from '../kinds/cloud-config.js';
import { DeviceActionAnnotation, deviceKind, type DeviceActionType, type DeviceSpec } from '../kinds/device.js';
import { facilityKind } from '../kinds/facility.js';
import { hardwareKind } from '../kinds/hardware.js';
import { IPAddressDeviceUidIndex, ipAddressDeviceUid, ipAddressKind, type IPAddressSpec } from '../kinds/ip-address.js';
import { ipPoolKind } from '../kinds/ip-pool.js';
import { metroKind } from '../kinds/metro.js';
import { operatingSystemKind, operatingSystemName, isProvisionableOn } from '../kinds/operating-system.js';
import { planKind } from '../kinds/plan.js';
import { sshKeyKind, USER_SSH_KEY_NAMESPACE, type SSHKeySpec } from '../kinds/ssh-key.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import { userKind, type UserSpec } from '../kinds/user.js';
import { virtualNetworkKind } from '../kinds/virtual-network.js';
import { ApiError, isAlreadyExists, isConflict } from '../lib/errors.js';
import { userDataFrom, userDataOf } from '../controllers/cloudconfig/user-data.js';
import type { MetalContext, Principal } from './context.js';
import {
  actionProblem,
  applySpecChanges,
  CREATED_BY_ANNOTATION,
  DEVICE_CATEGORIES,
  DEVICE_TYPES,
  deviceJson,
  deviceMatches,
  devicePatchFromUpdate,
  deviceSpecFromCreate,
  inMetalFields,
  ipAssignmentJson,
  sshKeyJson,
  type CreateContext,
  type DeviceCreateBody,
  type DeviceFilter,
  type DeviceUpdateBody,
  type DeviceWorld,
} from './device-json.js';
import { boolQuery, href, jsonBody, paginate, q1, shapeOf, type Query, unprocessable, cmp } from './http.js';
import { projectJson } from './projects.js';
import { eventJson } from './events.js';
import { describeErrors, metalSpec } from './spec.js';

/** The kinds the device routes read (their informers start before the API serves). */
// CloudConfigs and Secrets: a device with spec.cloudConfigRef shows its rendered document as `userdata`.
export const deviceRouteKinds: KindDeclaration[] = [deviceKind, hardwareKind, planKind, metroKind, facilityKind, operatingSystemKind, ipAddressKind, ipPoolKind, sshKeyKind, eventKind, userKind, virtualNetworkKind, cloudConfigKind, secretKind];

const DeviceIpIndex = IPAddressDeviceUidIndex;
const ProjectBlockIndex = 'metal-project-block';
const EventObjectIndex = 'metal-involved-uid';
const MaxBatchDevices = 100;

/** The informer caches as the translation's DeviceWorld. */
export function deviceWorld(ctx: MetalContext): DeviceWorld {
  const ips = ctx.informer(ipAddressKind).cache;
  if (!ips.hasIndex(DeviceIpIndex)) ips.addIndex(DeviceIpIndex, ipAddressDeviceUid);
  if (!ips.hasIndex(ProjectBlockIndex)) ips.addIndex(ProjectBlockIndex, (o) => ((o.spec as IPAddressSpec).use === 'block' && (o.spec as IPAddressSpec).project ? [(o.spec as IPAddressSpec).project!] : []));
  const byName = (kind: KindDeclaration) => (name: string) => ctx.informer(kind).cache.getByName(undefined, name);
  const all = (kind: KindDeclaration) => () => ctx.list(kind);
  return {
    plan: byName(planKind),
    plans: all(planKind),
    metro: byName(metroKind),
    metros: all(metroKind),
    facility: byName(facilityKind),
    facilities: all(facilityKind),
    operatingSystem: (slug) => ctx.informer(operatingSystemKind).cache.getByName(undefined, operatingSystemName(slug)),
    operatingSystems: all(operatingSystemKind),
    hardware: byName(hardwareKind),
    hardwareList: all(hardwareKind),
    ipPools: all(ipPoolKind),
    ipAssignments: (uid) => ips.byIndex(DeviceIpIndex, uid).filter((o) => (o.spec as IPAddressSpec).use === 'assignment').sort((a, b) => order(a) - order(b)),
    projectBlocks: (ns) => ips.byIndex(ProjectBlockIndex, ns),
    projectJson: (ns, shape) => {
      const p = ctx.registryNamespace(ns);
      if (!p) return undefined;
      return shape ? projectJson(ctx, p, shape, { nested: true }) : { id: p.metadata.uid, href: href(`/projects/${p.metadata.uid}`).href };
    },
    user: byName(userKind),
    sshKeysOf: (dev) => sshKeysOf(ctx, dev),
    vlans: (ns) => ctx.list(virtualNetworkKind, ns),
    userData: (dev) => {
      const ref = (dev.spec as DeviceSpec).cloudConfigRef;
      const cc = ref ? ctx.informer(cloudConfigKind).cache.getByName(dev.metadata.namespace, ref.name) : undefined;
      const secretRef = (cc?.status as CloudConfigStatus | undefined)?.secretRef;
      const secret = secretRef ? ctx.informer(secretKind).cache.getByName(dev.metadata.namespace, secretRef.name) : undefined;
      return userDataFrom(dev, cc, secret)?.text;
    },
  };
}

/** Public IPv4 first, then private IPv4, then IPv6: the order the original lists a device's addresses in. */
function order(ip: StoredObject): number {
  const s = ip.spec as IPAddressSpec;
  return (s.family === 4 ? 0 : 2) + (s.public ? 0 : 1);
}

/** The keys a device gets: the project's (all, or those it names) and its users' personal keys. */
export function sshKeysOf(ctx: MetalContext, dev: StoredObject): StoredObject[] {
  const spec = dev.spec as DeviceSpec;
  const project = ctx.list(sshKeyKind, dev.metadata.namespace);
  const chosen = spec.sshKeys ? project.filter((k) => spec.sshKeys!.includes(k.metadata.name)) : project;
  const users = new Set(spec.sshKeyUsers ?? []);
  const personal = users.size ? ctx.list(sshKeyKind, USER_SSH_KEY_NAMESPACE).filter((k) => users.has((k.spec as SSHKeySpec).owner ?? '')) : [];
  return [...chosen, ...personal];
}

/** The members of a project's organization (whose personal keys a device may get). */
function membersOf(ctx: MetalContext, ns: StoredObject): StoredObject[] {
  const org = ctx.organizationOf(ns);
  return ctx.list(userKind).filter((u) => (u.spec as UserSpec).organizations.includes(org));
}

function fieldManager(p: Principal): string {
  return `metal-api/${p.user.metadata.name}`;
}

/**
 * A create body validated against the spec's input schema. `facility` may come as a string (`"any"`, `"da11"`),
 * as older clients send it, or as the list the SDKs send; it is a list from here on.
 */
function createBody(raw: Record<string, unknown>, where = ''): DeviceCreateBody {
  const body = { ...raw };
  if (typeof body.facility === 'string') body.facility = [body.facility];
  if (body.metro === undefined && body.facility === undefined) throw unprocessable(`${where}metro: a metro (or facility) is required, e.g. "metro": "da"`);
  const v = metalSpec().validator(body.metro !== undefined ? 'DeviceCreateInMetroInput' : 'DeviceCreateInFacilityInput');
  if (!v(body)) throw unprocessable(...describeErrors(v.errors).map((m) => where + m));
  return body as unknown as DeviceCreateBody;
}

/** A DNS label for the object name from the hostname; the name is the hostname when that is free. */
function nameFor(ctx: MetalContext, namespace: string, hostname: string | undefined): { name?: string; generateName: string } {
  const base = (hostname ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50)
    .replace(/-+$/, '');
  if (!base) return { generateName: 'device-' };
  const taken = ctx.informer(deviceKind).cache.getByName(namespace, base);
  return { ...(taken ? {} : { name: base }), generateName: `${base}-` };
}

async function createDevice(ctx: MetalContext, p: Principal, ns: StoredObject, spec: DeviceSpec): Promise<StoredObject> {
  const { name, generateName } = nameFor(ctx, ns.metadata.name, spec.hostname);
  const obj = (n: string | undefined): KubeObject => ({
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Device',
    metadata: { ...(n ? { name: n } : { generateName }), namespace: ns.metadata.name, annotations: { [CREATED_BY_ANNOTATION]: p.user.metadata.name } },
    spec: spec as unknown as Record<string, unknown>,
  });
  try {
    try {
      return await ctx.registry.create(deviceKind, obj(name), { fieldManager: fieldManager(p) });
    } catch (e) {
      // Two creates of the same hostname at once: the loser gets a generated name.
      if (name && isAlreadyExists(e)) return await ctx.registry.create(deviceKind, obj(undefined), { fieldManager: fieldManager(p) });
      throw e;
    }
  } catch (e) {
    throw inMetalFields(e);
  }
}

function createContext(ctx: MetalContext, ns: StoredObject): CreateContext {
  return { namespace: ns.metadata.name, projectKeys: ctx.list(sshKeyKind, ns.metadata.name), members: membersOf(ctx, ns) };
}

/** The list filters of the spec (findProjectDevices, findOrganizationDevices); a bad value is a 422. */
function deviceFilter(query: Query): DeviceFilter {
  const cats = [query.categories].flat().filter((c): c is string => typeof c === 'string').flatMap((c) => c.split(',')).filter(Boolean);
  for (const c of cats) if (!(DEVICE_CATEGORIES as readonly string[]).includes(c)) throw unprocessable(`categories: ${JSON.stringify(c)} is not a category; use ${DEVICE_CATEGORIES.join(', ')}`);
  const type = q1(query, 'type');
  if (type !== undefined && type !== '' && !(DEVICE_TYPES as readonly string[]).includes(type)) throw unprocessable(`type: ${JSON.stringify(type)} is not an instance type; use ${DEVICE_TYPES.join(', ')}`);
  const str = (n: string): string | undefined => {
    const v = q1(query, n);
    return v === undefined || v === '' ? undefined : v;
  };
  return {
    search: str('search'),
    categories: cats,
    facility: str('facility'),
    metro: str('metro'),
    hostname: str('hostname'),
    reserved: boolQuery(query, 'reserved'),
    tag: str('tag'),
    type: type || undefined,
    hasTerminationTime: boolQuery(query, 'has_termination_time'),
  };
}

function byAge(a: StoredObject, b: StoredObject): number {
  return cmp(a.metadata.creationTimestamp, b.metadata.creationTimestamp) || cmp(a.metadata.name, b.metadata.name);
}

/** Updates a device's spec from its current copy, again on a conflict (a controller wrote meanwhile). */
async function updateDevice(ctx: MetalContext, p: Principal, dev: StoredObject, change: (d: StoredObject) => KubeObject): Promise<StoredObject> {
  let cur = dev;
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.registry.update(deviceKind, change(cur), { fieldManager: fieldManager(p) });
    } catch (e) {
      if (isConflict(e) && attempt < 5) {
        const fresh = await ctx.registry.get(deviceKind, dev.metadata.namespace, dev.metadata.name);
        if (!fresh) throw ApiError.notFound('device', dev.metadata.uid);
        cur = fresh;
        continue;
      }
      throw inMetalFields(e);
    }
  }
}

interface ActionBody {
  type: DeviceActionType;
  force_delete?: boolean;
  deprovision_fast?: boolean;
  preserve_data?: boolean;
  operating_system?: string;
  ipxe_script_url?: string;
}

/** The spec changes a reinstall asks for (a new OS or iPXE URL), checked as a create would be. */
function reinstallChanges(world: DeviceWorld, dev: StoredObject, body: ActionBody): Record<string, unknown> {
  const spec = dev.spec as DeviceSpec;
  const problems: string[] = [];
  // Reinstall always rewrites the disks: keeping data on them is not something the workflow can do.
  if (body.preserve_data) problems.push('preserve_data: metalplane\'s reinstall rewrites every disk; send false or leave it out');
  const changes: Record<string, unknown> = {};
  const slug = body.operating_system || spec.operatingSystem;
  const os = world.operatingSystem(slug);
  if (!os) problems.push(`operating_system: ${JSON.stringify(slug)} is not an operating system; known: ${world.operatingSystems().map((o) => (o.spec as { slug: string }).slug).sort().join(', ')}`);
  else {
    const on = (os.spec as { provisionableOn: string[] }).provisionableOn;
    if (!isProvisionableOn(on, spec.plan)) problems.push(`operating_system: ${slug} cannot be installed on plan ${spec.plan} (it is for ${on.join(', ')})`);
    if (body.operating_system && body.operating_system !== spec.operatingSystem) changes.operatingSystem = (os.spec as { slug: string }).slug;
  }
  const url = body.ipxe_script_url || spec.ipxeScriptUrl;
  if (body.ipxe_script_url) changes.ipxeScriptUrl = body.ipxe_script_url;
  if (os && ((os.spec as { customIpxe?: boolean }).customIpxe || slug === 'custom_ipxe') && !url) problems.push(`ipxe_script_url: operating_system ${slug} boots your iPXE script and needs its URL`);
  if (problems.length) throw unprocessable(...problems);
  return changes;
}

export function registerDeviceRoutes(app: FastifyInstance, ctx: MetalContext): void {
  const world = deviceWorld(ctx);
  const events = ctx.informer(eventKind).cache;
  if (!events.hasIndex(EventObjectIndex)) events.addIndex(EventObjectIndex, (o) => {
    const uid = (o as { involvedObject?: { uid?: string } }).involvedObject?.uid;
    return uid ? [uid] : [];
  });

  const device = (req: FastifyRequest): { dev: StoredObject; project: StoredObject } => {
    const { id } = req.params as { id: string };
    const { obj, project } = ctx.objectById(req.metal!, deviceKind, id, 'device');
    return { dev: obj, project };
  };
  const render = (dev: StoredObject, query: Query): Record<string, unknown> => deviceJson(ctx.byId(deviceKind, dev.metadata.uid) ?? dev, world, shapeOf(query));
  const listDevices = (req: FastifyRequest, namespaces: StoredObject[], selfPath: string): Record<string, unknown> => {
    const query = req.query as Query;
    const filter = deviceFilter(query);
    const all = namespaces.flatMap((ns) => ctx.list(deviceKind, ns.metadata.name)).filter((d) => deviceMatches(d, filter, world)).sort(byAge);
    const page = paginate(all, query, selfPath);
    const shape = shapeOf(query);
    return { devices: page.items.map((d) => deviceJson(d, world, shape)), meta: page.meta };
  };

  app.post('/projects/:id/devices', async (req, reply) => {
    const p = req.metal!;
    const ns = ctx.project(p, (req.params as { id: string }).id);
    ctx.requireWrite(p);
    const body = createBody(jsonBody<Record<string, unknown>>(req));
    const spec = deviceSpecFromCreate(body, createContext(ctx, ns), world);
    const dev = await createDevice(ctx, p, ns, spec);
    return reply.code(201).send(render(dev, req.query as Query));
  });

  app.post('/projects/:id/devices/batch', async (req, reply) => {
    const p = req.metal!;
    const ns = ctx.project(p, (req.params as { id: string }).id);
    ctx.requireWrite(p);
    const input = jsonBody<{ batches?: unknown }>(req);
    if (!Array.isArray(input.batches) || input.batches.length === 0) throw unprocessable('batches: must be a non-empty list of device requests, each with hostnames or quantity');
    const cc = createContext(ctx, ns);
    // Every device of every batch is checked before any is created, so a bad batch creates nothing.
    const planned: Array<{ quantity: number; specs: DeviceSpec[] }> = [];
    let total = 0;
    input.batches.forEach((b, i) => {
      const where = `batches[${i}].`;
      if (!b || typeof b !== 'object' || Array.isArray(b)) throw unprocessable(`${where.slice(0, -1)}: must be an object`);
      const { hostnames, quantity, ...rest } = b as Record<string, unknown>;
      if (hostnames !== undefined && (!Array.isArray(hostnames) || !hostnames.every((h) => typeof h === 'string'))) throw unprocessable(`${where}hostnames: must be a list of strings`);
      if (quantity !== undefined && (!Number.isInteger(quantity) || (quantity as number) < 1)) throw unprocessable(`${where}quantity: must be a positive integer`);
      const names = (hostnames as string[] | undefined) ?? [];
      const n = names.length || (quantity as number | undefined) || 0;
      if (n === 0) throw unprocessable(`${where}hostnames: give hostnames or a quantity`);
      if (names.length && quantity !== undefined && quantity !== names.length) throw unprocessable(`${where}quantity: ${quantity} does not match the ${names.length} hostnames`);
      total += n;
      if (total > MaxBatchDevices) throw unprocessable(`batches: at most ${MaxBatchDevices} devices per request`);
      const specs: DeviceSpec[] = [];
      for (let k = 0; k < n; k++) {
        const one = createBody({ ...rest, ...(names[k] !== undefined ? { hostname: names[k] } : {}) }, where);
        try {
          specs.push(deviceSpecFromCreate(one as DeviceCreateBody, cc, world));
        } catch (e) {
          if (e instanceof ApiError && e.code === 422) throw unprocessable(...(e.details?.causes ?? []).map((c) => where + c.message));
          throw e;
        }
      }
      planned.push({ quantity: n, specs });
    });
    const now = new Date(ctx.clock.now()).toISOString();
    const batches = [];
    for (const b of planned) {
      const devices = [];
      for (const spec of b.specs) devices.push(await createDevice(ctx, p, ns, spec));
      batches.push({
        id: randomUUID(),
        quantity: b.quantity,
        state: 'completed',
        created_at: now,
        updated_at: now,
        project: href(`/projects/${ns.metadata.uid}`),
        devices: devices.map((d) => href(`/devices/${d.metadata.uid}`)),
        error_messages: [],
      });
    }
    return reply.code(201).send({ batches });
  });

  app.get('/projects/:id/devices', async (req) => {
    const ns = ctx.project(req.metal!, (req.params as { id: string }).id);
    return listDevices(req, [ns], `/projects/${ns.metadata.uid}/devices`);
  });

  app.get('/organizations/:id/devices', async (req) => {
    const p = req.metal!;
    ctx.requireUserKey(p, 'read organizations');
    const org = ctx.organization(p, (req.params as { id: string }).id);
    const namespaces = ctx.projects(p).filter((ns) => ctx.organizationOf(ns) === org.metadata.name);
    return listDevices(req, namespaces, `/organizations/${org.metadata.uid}/devices`);
  });

  app.get('/devices/:id', async (req) => render(device(req).dev, req.query as Query));

  app.put('/devices/:id', async (req) => {
    const p = req.metal!;
    const { dev } = device(req);
    ctx.requireWrite(p);
    const changes = devicePatchFromUpdate(jsonBody<DeviceUpdateBody>(req, 'DeviceUpdateInput'));
    const out = await updateDevice(ctx, p, dev, (d) => ({ ...d, spec: applySpecChanges(d.spec as DeviceSpec, changes) as unknown as Record<string, unknown> }));
    return render(out, req.query as Query);
  });

  app.delete('/devices/:id', async (req, reply) => {
    const p = req.metal!;
    const { dev } = device(req);
    ctx.requireWrite(p);
    // force_delete detaches storage volumes in the original; there are none here, so it changes nothing.
    boolQuery(req.query as Query, 'force_delete');
    if ((dev.spec as DeviceSpec).locked) throw unprocessable('the device is locked: unlock it (PUT /devices/{id} with locked: false) before deleting it');
    if (!dev.metadata.deletionTimestamp) {
      try {
        await ctx.registry.delete(deviceKind, dev.metadata.namespace, dev.metadata.name);
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    return reply.code(204).send();
  });

  app.post('/devices/:id/actions', async (req, reply) => {
    const p = req.metal!;
    const { dev } = device(req);
    ctx.requireWrite(p);
    const body = jsonBody<ActionBody>(req, 'DeviceActionInput');
    const changes = body.type === 'reinstall' ? reinstallChanges(world, dev, body) : {};
    await updateDevice(ctx, p, dev, (d) => {
      // Checked on the copy being written: a conflict retry sees what the controller did meanwhile.
      const problem = actionProblem(d, body.type);
      if (problem) throw unprocessable(`${body.type}: ${problem}`);
      // A new annotation value asks once; the resourceVersion makes it differ from every earlier request.
      const request = `${body.type}/${d.metadata.resourceVersion}`;
      return { ...d, metadata: { ...d.metadata, annotations: { ...d.metadata.annotations, [DeviceActionAnnotation]: request } }, spec: applySpecChanges(d.spec as DeviceSpec, changes) as unknown as Record<string, unknown> };
    });
    // The spec lists 202 with no schema; an empty JSON object keeps every client's decoder happy.
    return reply.code(202).send({});
  });

  app.get('/devices/:id/ips', async (req) => {
    const { dev } = device(req);
    return { ip_addresses: world.ipAssignments(dev.metadata.uid).map((ip) => ipAssignmentJson(ip, dev, world)) };
  });

  app.get('/devices/:id/events', async (req) => {
    const { dev } = device(req);
    const query = req.query as Query;
    const time = (e: StoredObject): string => (eventJson(e).created_at as string) ?? '';
    // Newest first, as the original lists events.
    const all = events.byIndex(EventObjectIndex, dev.metadata.uid).sort((a, b) => cmp(time(b), time(a)) || cmp(b.metadata.name, a.metadata.name));
    const page = paginate(all, query, `/devices/${dev.metadata.uid}/events`);
    return { events: page.items.map((e) => eventJson(e)), meta: page.meta };
  });

  // spec.userData, or the rendered document of the device's CloudConfig.
  app.get('/devices/:id/userdata', async (req) => ({ userdata: (await userDataOf(ctx.registry, device(req).dev))?.text ?? '' }));

  app.get('/devices/:id/customdata', async (req) => (device(req).dev.spec as DeviceSpec).customData ?? {});

  app.get('/devices/:id/ssh-keys', async (req) => {
    const { dev } = device(req);
    const query = req.query as Query;
    const search = q1(query, 'search') ?? q1(query, 'Search string');
    const keys = sshKeysOf(ctx, dev).filter((k) => {
      const s = k.spec as SSHKeySpec;
      return !search || [s.label, s.key, (k.status as { fingerprint?: string } | undefined)?.fingerprint].some((f) => f?.toLowerCase().includes(search.toLowerCase()));
    });
    return { ssh_keys: keys.map((k) => sshKeyJson(k, world)) };
  });
}
