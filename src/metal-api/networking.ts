// Layer 2 in the Metal API: a project's VLANs (VirtualNetwork objects), and the ports of its devices — the bound
// machine's NICs and their bond, `bond0` — with the original's port operations: assign/unassign a VLAN, bond,
// disbond, convert to layer 2 / layer 3, native VLAN, and VLAN assignment batches. A port has no object of its
// own: its id is a name-based UUID of the machine and the port name, and what it carries is the Device's
// spec.network (src/kinds/device-network.ts), which every operation here edits in one optimistic write. The
// network controller tells the switch.
import type { FastifyInstance } from 'fastify';
import { deviceKind, type DeviceSpec, type DeviceStatus } from '../kinds/device.js';
import { hardwareKind, type HardwareSpec } from '../kinds/hardware.js';
import { metroKind } from '../kinds/metro.js';
import { facilityKind } from '../kinds/facility.js';
import { virtualNetworkKind, virtualNetworkName, VXLAN_AUTO, VXLAN_MAX, VXLAN_MIN, type VirtualNetworkSpec } from '../kinds/virtual-network.js';
import { vlanAssignmentBatchKind, type VLANAssignmentBatchSpec } from '../kinds/vlan-assignment-batch.js';
import { BOND, declareNetwork, nicNames, portId, resolveNetwork, uuidV5, type ResolvedNetwork, type ResolvedPort } from '../kinds/device-network.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import { ApiError, isAlreadyExists, isConflict } from '../lib/errors.js';
import type { MetalContext, Principal } from './context.js';
import { applyExclude, boolQuery, href, isUuid, jsonBody, q1, shapeOf, unprocessable, type Query, type Shape } from './http.js';

/** The kinds these routes read through the context's informers. */
export const networkingRouteKinds: KindDeclaration[] = [hardwareKind, metroKind, facilityKind, virtualNetworkKind, vlanAssignmentBatchKind];

const NO_SHAPE: Shape = { include: {}, exclude: {} };

function fieldManager(p: Principal): string {
  return `metal-api/${p.user.metadata.name}`;
}

function deviceMetro(dev: StoredObject): string | undefined {
  return (dev.status as DeviceStatus | undefined)?.metro ?? (dev.spec as DeviceSpec).metro;
}

// ---------------------------------------------------------------- JSON

/** A VLAN as the spec's VirtualNetwork. `ctx` (when given) adds the metro reference and the devices on it. */
export function virtualNetworkJson(v: StoredObject, ctx?: MetalContext, shape: Shape = NO_SHAPE): Record<string, unknown> {
  const spec = v.spec as VirtualNetworkSpec;
  const out: Record<string, unknown> = {
    id: v.metadata.uid,
    href: href(`/virtual-networks/${v.metadata.uid}`).href,
    vxlan: spec.vxlan,
    metro_code: spec.metro,
    description: spec.description ?? '',
    tags: spec.tags ?? [],
    created_at: v.metadata.creationTimestamp,
    assigned_to_virtual_circuit: false,
    metal_gateways: [],
  };
  if (ctx) {
    const metro = ctx.informer(metroKind).cache.getByName(undefined, spec.metro);
    if (metro) out.metro = href(`/locations/metros/${metro.metadata.uid}`);
    const ns = v.metadata.namespace ? ctx.registryNamespace(v.metadata.namespace) : undefined;
    if (ns) out.assigned_to = href(`/projects/${ns.metadata.uid}`);
    out.instances = ctx
      .list(deviceKind, v.metadata.namespace)
      .filter((d) => ((d.spec as DeviceSpec).network?.ports ?? []).some((p) => p.vlans?.includes(v.metadata.name)))
      .map((d) => href(`/devices/${d.metadata.uid}`));
  }
  return applyExclude(out, shape);
}

function portJson(net: ResolvedNetwork, port: ResolvedPort, hw: StoredObject, vlans: ReadonlyMap<string, StoredObject>): Record<string, unknown> {
  const id = portId(hw.metadata.uid, port.name);
  const refs = port.vlans.flatMap((n) => {
    const v = vlans.get(n);
    return v ? [href(`/virtual-networks/${v.metadata.uid}`)] : [];
  });
  const native = port.nativeVlan ? vlans.get(port.nativeVlan) : undefined;
  return {
    id,
    href: href(`/ports/${id}`).href,
    name: port.name,
    type: port.kind === 'bond' ? 'NetworkBondPort' : 'NetworkPort',
    network_type: net.type,
    data: port.kind === 'bond' ? { bonded: port.bonded } : { mac: port.mac, bonded: port.bonded },
    ...(port.kind === 'nic' ? { bond: { id: portId(hw.metadata.uid, BOND), name: BOND } } : {}),
    disbond_operation_supported: true,
    virtual_networks: refs,
    ...(native ? { native_virtual_network: virtualNetworkJson(native) } : {}),
  };
}

/**
 * The Device JSON's `network_ports[]`: bond0, then the machine's NICs, with the ids `/ports/{id}` answers to.
 * `vlans` are the VirtualNetworks of the device's project (to reference the VLANs a port carries); none for a
 * device not bound to a machine yet.
 */
export function networkPortsJson(device: StoredObject, hardware: StoredObject | undefined, vlans: readonly StoredObject[] = []): Record<string, unknown>[] {
  if (!hardware) return [];
  const net = resolveNetwork((device.spec as DeviceSpec).network, (hardware.spec as HardwareSpec).nics);
  const byName = new Map(vlans.filter((v) => v.metadata.namespace === device.metadata.namespace).map((v) => [v.metadata.name, v]));
  return [net.bond, ...net.nics].map((p) => portJson(net, p, hardware, byName));
}

// ---------------------------------------------------------------- lookups

interface PortContext {
  dev: StoredObject;
  hw: StoredObject;
  project: StoredObject;
  name: string;
}

function boundHardware(ctx: MetalContext, dev: StoredObject): StoredObject | undefined {
  const name = (dev.status as DeviceStatus | undefined)?.hardware;
  return name ? ctx.informer(hardwareKind).cache.getByName(undefined, name) : undefined;
}

/** A port of one of the caller's devices, or 404 (ports of other projects' devices do not exist for the caller). */
function findPort(ctx: MetalContext, p: Principal, id: string): PortContext {
  if (isUuid(id)) {
    for (const project of ctx.projects(p)) {
      for (const dev of ctx.list(deviceKind, project.metadata.name)) {
        const hw = boundHardware(ctx, dev);
        if (!hw) continue;
        for (const name of [BOND, ...nicNames((hw.spec as HardwareSpec).nics).map((n) => n.name)]) {
          if (portId(hw.metadata.uid, name) === id) return { dev, hw, project, name };
        }
      }
    }
  }
  throw ApiError.notFound('port', id);
}

function projectVlans(ctx: MetalContext, namespace: string): Map<string, StoredObject> {
  return new Map(ctx.list(virtualNetworkKind, namespace).map((v) => [v.metadata.name, v]));
}

/** A VLAN named as the original accepts it: its UUID or its vxlan (in the device's metro). */
function vlanForPort(ctx: MetalContext, pc: PortContext, vnid: unknown, field = 'vnid'): StoredObject {
  if (vnid === undefined || vnid === null || vnid === '') throw unprocessable(`${field} is required: the virtual network's id or its vxlan (e.g. "1001")`);
  const ref = String(vnid);
  const ns = pc.dev.metadata.namespace!;
  const metro = deviceMetro(pc.dev);
  let v: StoredObject | undefined;
  if (isUuid(ref)) {
    v = ctx.byId(virtualNetworkKind, ref);
    if (v && v.metadata.namespace !== ns) v = undefined;
  } else if (/^[0-9]+$/.test(ref) && metro) {
    v = ctx.informer(virtualNetworkKind).cache.getByName(ns, virtualNetworkName(metro, Number(ref)));
  }
  if (!v) {
    const known = ctx.list(virtualNetworkKind, ns).filter((x) => (x.spec as VirtualNetworkSpec).metro === metro).map((x) => String((x.spec as VirtualNetworkSpec).vxlan));
    throw unprocessable(`${field}: ${JSON.stringify(ref)} is not a virtual network of the project in metro ${metro ?? '?'}${known.length ? `; its VLANs there: ${known.join(', ')}` : '; it has none there (POST /projects/{id}/virtual-networks)'}`);
  }
  const vm = (v.spec as VirtualNetworkSpec).metro;
  if (metro && vm !== metro) throw unprocessable(`${field}: virtual network ${(v.spec as VirtualNetworkSpec).vxlan} is in metro ${vm}, the device in ${metro}: a port carries only VLANs of its metro`);
  return v;
}

// ---------------------------------------------------------------- port operations (pure edits of the resolved view)

type Edit = (net: ResolvedNetwork) => void;

function portOf(net: ResolvedNetwork, name: string): ResolvedPort {
  return name === BOND ? net.bond : net.nics.find((n) => n.name === name)!;
}

function carrier(net: ResolvedNetwork, name: string, bondId: string): ResolvedPort {
  const port = portOf(net, name);
  if (port.kind === 'nic' && port.bonded) throw unprocessable(`port ${name} is bonded into bond0: assign VLANs to bond0 (${bondId}), or disbond ${name} first`);
  if (port.kind === 'bond' && !port.bonded) throw unprocessable('bond0 has no NICs (every NIC is disbonded): assign VLANs to a NIC, or bond one first');
  return port;
}

function assign(name: string, vlan: StoredObject, bondId: string, opts: { idempotent?: boolean } = {}): Edit {
  return (net) => {
    const port = carrier(net, name, bondId);
    if (port.vlans.includes(vlan.metadata.name)) {
      if (opts.idempotent) return;
      throw unprocessable(`virtual network ${(vlan.spec as VirtualNetworkSpec).vxlan} is already assigned to port ${name}`);
    }
    port.vlans.push(vlan.metadata.name);
  };
}

function unassign(name: string, vlan: StoredObject, opts: { idempotent?: boolean } = {}): Edit {
  return (net) => {
    const port = portOf(net, name);
    if (!port.vlans.includes(vlan.metadata.name)) {
      if (opts.idempotent) return;
      throw unprocessable(`virtual network ${(vlan.spec as VirtualNetworkSpec).vxlan} is not assigned to port ${name}${port.vlans.length ? `; it carries ${port.vlans.join(', ')}` : ''}`);
    }
    port.vlans = port.vlans.filter((n) => n !== vlan.metadata.name);
    if (port.nativeVlan === vlan.metadata.name) delete port.nativeVlan;
  };
}

function setNative(name: string, vlan: StoredObject | undefined): Edit {
  return (net) => {
    const port = portOf(net, name);
    if (!vlan) {
      delete port.nativeVlan;
      return;
    }
    if (!port.vlans.includes(vlan.metadata.name)) {
      throw unprocessable(`virtual network ${(vlan.spec as VirtualNetworkSpec).vxlan} is not assigned to port ${name}: assign it first (POST /ports/{id}/assign), then make it native`);
    }
    port.nativeVlan = vlan.metadata.name;
  };
}

function allVlans(net: ResolvedNetwork): string[] {
  return [...net.bond.vlans.map((v) => `bond0:${v}`), ...net.nics.flatMap((n) => n.vlans.map((v) => `${n.name}:${v}`))];
}

function convertLayer2(name: string): Edit {
  return (net) => {
    if (name !== BOND) throw unprocessable(`port ${name} is a NIC: convert the bond port bond0 to layer 2 (a NIC out of the bond is layer 2 already)`);
    net.bond.layer2 = true;
  };
}

function convertLayer3(name: string): Edit {
  return (net) => {
    if (name !== BOND) throw unprocessable(`port ${name} is a NIC: convert the bond port bond0 to layer 3`);
    const carried = allVlans(net);
    if (carried.length) throw unprocessable(`the device's ports still carry VLANs (${carried.join(', ')}): unassign them first`);
    net.bond.layer2 = false;
    for (const n of net.nics) n.bonded = true;
  };
}

function targets(net: ResolvedNetwork, name: string, bulk: boolean): ResolvedPort[] {
  return name === BOND || bulk ? net.nics : [portOf(net, name)];
}

function bond(name: string, bulk: boolean): Edit {
  return (net) => {
    for (const n of targets(net, name, bulk)) {
      if (!n.bonded && n.vlans.length) throw unprocessable(`port ${n.name} carries VLANs (${n.vlans.join(', ')}): unassign them before bonding it`);
      n.bonded = true;
      n.vlans = [];
      delete n.nativeVlan;
      n.layer2 = net.bond.layer2;
    }
    net.bond.bonded = true;
  };
}

function disbond(name: string, bulk: boolean): Edit {
  return (net) => {
    const ts = targets(net, name, bulk);
    const first = net.nics[0]!;
    if (!net.bond.layer2 && ts.includes(first)) {
      throw unprocessable(
        `bond0 is layer 3 and ${first.name} carries the device's IP addresses in it: convert bond0 to layer 2 first, or disbond another NIC (e.g. ${net.nics[1]?.name ?? 'eth1'}) for hybrid`,
      );
    }
    for (const n of ts) {
      n.bonded = false;
      n.layer2 = true;
    }
    if (!net.nics.some((n) => n.bonded) && net.bond.vlans.length) throw unprocessable(`bond0 carries VLANs (${net.bond.vlans.join(', ')}): unassign them before disbonding its last NIC`);
  };
}

/** Applies edits to the device's current network and writes it, naming the version read (a race reads again). */
async function editNetwork(ctx: MetalContext, p: Principal, pc: PortContext, edits: Edit[]): Promise<{ dev: StoredObject; changed: boolean }> {
  ctx.requireWrite(p);
  for (let attempt = 0; ; attempt++) {
    const dev = ctx.byId(deviceKind, pc.dev.metadata.uid) ?? pc.dev;
    const spec = dev.spec as DeviceSpec;
    const net = resolveNetwork(spec.network, (pc.hw.spec as HardwareSpec).nics);
    for (const e of edits) e(net);
    const next = declareNetwork(net);
    if (JSON.stringify(next) === JSON.stringify(declareNetwork(resolveNetwork(spec.network, (pc.hw.spec as HardwareSpec).nics)))) return { dev, changed: false };
    try {
      const out = await ctx.registry.mergePatch(
        deviceKind,
        dev.metadata.namespace,
        dev.metadata.name,
        { metadata: { resourceVersion: dev.metadata.resourceVersion }, spec: { network: next.ports ? next : null } },
        { fieldManager: fieldManager(p) },
      );
      return { dev: ctx.byId(deviceKind, out.metadata.uid) ?? out, changed: true };
    } catch (e) {
      if (isConflict(e) && attempt < 5) continue;
      throw e;
    }
  }
}

function renderPort(ctx: MetalContext, pc: PortContext, dev: StoredObject): Record<string, unknown> {
  const net = resolveNetwork((dev.spec as DeviceSpec).network, (pc.hw.spec as HardwareSpec).nics);
  return portJson(net, portOf(net, pc.name), pc.hw, projectVlans(ctx, dev.metadata.namespace!));
}

// ---------------------------------------------------------------- batches

function batchJson(ctx: MetalContext, b: StoredObject, pc: PortContext | undefined): Record<string, unknown> {
  const spec = b.spec as VLANAssignmentBatchSpec;
  const dev = pc ? ctx.byId(deviceKind, pc.dev.metadata.uid) : undefined;
  const netStatus = (dev?.status as DeviceStatus | undefined)?.network;
  let state = 'completed';
  let errors = spec.errors ?? [];
  if (errors.length) state = 'failed';
  else if (spec.deviceGeneration !== undefined) {
    if ((netStatus?.observedGeneration ?? 0) < spec.deviceGeneration) state = 'in_progress';
    else if (netStatus?.synced === false) {
      state = 'failed';
      errors = [netStatus.message ?? netStatus.reason ?? 'the switch was not told'];
    }
  }
  const ns = b.metadata.namespace ? ctx.registryNamespace(b.metadata.namespace) : undefined;
  return {
    id: b.metadata.uid,
    created_at: b.metadata.creationTimestamp,
    updated_at: b.metadata.creationTimestamp,
    state,
    error_messages: errors,
    quantity: spec.assignments.length,
    vlan_assignments: spec.assignments.map((a) => ({ id: uuidV5(`vlan-assignment-batch/${b.metadata.uid}/${a.vlan}`), vlan: a.vlan, state: a.state, native: a.native === true })),
    ...(pc && dev ? { port: renderPort(ctx, pc, dev) } : {}),
    ...(ns ? { project: href(`/projects/${ns.metadata.uid}`) } : {}),
  };
}

interface BatchInput {
  vlan_assignments?: Array<{ vlan?: string; state?: 'assigned' | 'unassigned'; native?: boolean }>;
}

// ---------------------------------------------------------------- routes

interface VirtualNetworkInput {
  metro?: string;
  facility?: string;
  vxlan?: number;
  description?: string;
  tags?: string[];
}

function metroFor(ctx: MetalContext, input: VirtualNetworkInput): string {
  const metros = ctx.list(metroKind);
  const known = (): string => metros.map((m) => m.metadata.name).sort().join(', ');
  if (input.metro) {
    const m = metros.find((x) => x.metadata.name === input.metro!.toLowerCase() || x.metadata.uid === input.metro);
    if (!m) throw unprocessable(`metro: ${JSON.stringify(input.metro)} is not a metro; known metros: ${known()}`);
    return m.metadata.name;
  }
  if (input.facility) {
    const f = ctx.list(facilityKind).find((x) => x.metadata.name === input.facility!.toLowerCase() || x.metadata.uid === input.facility);
    if (!f) throw unprocessable(`facility: ${JSON.stringify(input.facility)} is not a facility; name a metro instead (known metros: ${known()})`);
    return (f.spec as { metro: string }).metro;
  }
  throw unprocessable(`metro is required: the metro code or id the VLAN is in (known metros: ${known()})`);
}

export function registerNetworkingRoutes(app: FastifyInstance, ctx: MetalContext): void {
  // ---- VLANs

  app.get('/projects/:id/virtual-networks', async (req) => {
    const { id } = req.params as { id: string };
    const ns = ctx.project(req.metal!, id);
    const query = req.query as Query;
    const metro = q1(query, 'metro');
    const facility = q1(query, 'facility');
    const facilityMetro = facility ? (ctx.list(facilityKind).find((f) => f.metadata.name === facility || f.metadata.uid === facility)?.spec as { metro?: string } | undefined)?.metro ?? '\0' : undefined;
    const metroCode = metro ? (ctx.list(metroKind).find((m) => m.metadata.uid === metro)?.metadata.name ?? metro.toLowerCase()) : undefined;
    const shape = shapeOf(query);
    const vlans = ctx
      .list(virtualNetworkKind, ns.metadata.name)
      .filter((v) => metroCode === undefined || (v.spec as VirtualNetworkSpec).metro === metroCode)
      .filter((v) => facilityMetro === undefined || (v.spec as VirtualNetworkSpec).metro === facilityMetro)
      .sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp) || a.metadata.name.localeCompare(b.metadata.name));
    return { virtual_networks: vlans.map((v) => virtualNetworkJson(v, ctx, shape)) };
  });

  app.post('/projects/:id/virtual-networks', async (req, reply) => {
    const p = req.metal!;
    const { id } = req.params as { id: string };
    const ns = ctx.project(p, id);
    ctx.requireWrite(p);
    const input = jsonBody<VirtualNetworkInput>(req, 'VirtualNetworkCreateInput');
    const metro = metroFor(ctx, input);
    if (input.vxlan !== undefined && (!Number.isInteger(input.vxlan) || input.vxlan < VXLAN_MIN || input.vxlan > VXLAN_MAX)) {
      throw unprocessable(`vxlan: must be a VLAN id from ${VXLAN_MIN} to ${VXLAN_MAX}, got ${input.vxlan}`);
    }
    const taken = (n: number): boolean => ctx.informer(virtualNetworkKind).cache.getByName(ns.metadata.name, virtualNetworkName(metro, n)) !== undefined;
    for (let attempt = 0; ; attempt++) {
      let vxlan = input.vxlan;
      if (vxlan === undefined) {
        for (let n = VXLAN_AUTO[0]; n <= VXLAN_AUTO[1] && vxlan === undefined; n++) if (!taken(n)) vxlan = n;
        if (vxlan === undefined) throw unprocessable(`vxlan: every VLAN id from ${VXLAN_AUTO[0]} to ${VXLAN_AUTO[1]} is in use in metro ${metro}; name one from ${VXLAN_MIN} to ${VXLAN_MAX}`);
      } else if (taken(vxlan)) {
        throw unprocessable(`vxlan: ${vxlan} is already a virtual network of this project in metro ${metro}; pick another from ${VXLAN_MIN} to ${VXLAN_MAX}`);
      }
      try {
        const v = await ctx.registry.create(
          virtualNetworkKind,
          {
            apiVersion: 'metalplane.dev/v1alpha1',
            kind: 'VirtualNetwork',
            metadata: { name: virtualNetworkName(metro, vxlan), namespace: ns.metadata.name },
            spec: { metro, vxlan, ...(input.description !== undefined ? { description: input.description } : {}), ...(input.tags ? { tags: input.tags } : {}) } satisfies VirtualNetworkSpec,
          },
          { fieldManager: fieldManager(p) },
        );
        return reply.code(201).send(virtualNetworkJson(ctx.byId(virtualNetworkKind, v.metadata.uid) ?? v, ctx, shapeOf(req.query as Query)));
      } catch (e) {
        // Two creates of one vxlan at once: the store keeps one; the other is told (or, picking, takes the next).
        if (isAlreadyExists(e) && input.vxlan === undefined && attempt < 5) continue;
        if (isAlreadyExists(e)) throw unprocessable(`vxlan: ${vxlan} is already a virtual network of this project in metro ${metro}; pick another from ${VXLAN_MIN} to ${VXLAN_MAX}`);
        throw e;
      }
    }
  });

  app.get('/virtual-networks/:id', async (req) => {
    const { id } = req.params as { id: string };
    const { obj } = ctx.objectById(req.metal!, virtualNetworkKind, id, 'virtual network');
    return virtualNetworkJson(obj, ctx, shapeOf(req.query as Query));
  });

  app.delete('/virtual-networks/:id', async (req) => {
    const p = req.metal!;
    const { id } = req.params as { id: string };
    const { obj } = ctx.objectById(p, virtualNetworkKind, id, 'virtual network');
    ctx.requireWrite(p);
    const users = ctx.list(deviceKind, obj.metadata.namespace).filter((d) => ((d.spec as DeviceSpec).network?.ports ?? []).some((x) => x.vlans?.includes(obj.metadata.name)));
    if (users.length) {
      throw unprocessable(`virtual network ${(obj.spec as VirtualNetworkSpec).vxlan} is assigned to ports of ${users.map((d) => (d.spec as DeviceSpec).hostname ?? d.metadata.name).join(', ')}: unassign it first`);
    }
    const body = virtualNetworkJson(obj, ctx, shapeOf(req.query as Query));
    await ctx.registry.delete(virtualNetworkKind, obj.metadata.namespace, obj.metadata.name, { preconditions: { uid: obj.metadata.uid } });
    return body;
  });

  // ---- ports

  app.get('/ports/:id', async (req) => {
    const pc = findPort(ctx, req.metal!, (req.params as { id: string }).id);
    return renderPort(ctx, pc, pc.dev);
  });

  const bondId = (pc: PortContext): string => portId(pc.hw.metadata.uid, BOND);
  const portAction = (path: string, edits: (pc: PortContext, req: { body: Record<string, unknown>; query: Query }) => Edit[], schema?: string): void => {
    app.post(`/ports/:id${path}`, async (req) => {
      const p = req.metal!;
      const pc = findPort(ctx, p, (req.params as { id: string }).id);
      ctx.requireWrite(p);
      const body = jsonBody<Record<string, unknown>>(req, schema);
      const { dev } = await editNetwork(ctx, p, pc, edits(pc, { body, query: req.query as Query }));
      return renderPort(ctx, pc, dev);
    });
  };
  portAction('/assign', (pc, { body }) => [assign(pc.name, vlanForPort(ctx, pc, body.vnid), bondId(pc))], 'PortAssignInput');
  portAction('/unassign', (pc, { body }) => [unassign(pc.name, vlanForPort(ctx, pc, body.vnid))], 'PortAssignInput');
  portAction('/bond', (pc, { query }) => [bond(pc.name, boolQuery(query, 'bulk_enable') === true)]);
  portAction('/disbond', (pc, { query }) => [disbond(pc.name, boolQuery(query, 'bulk_disable') === true)]);
  portAction('/convert/layer-2', (pc, { body }) => [convertLayer2(pc.name), ...(body.vnid !== undefined && body.vnid !== '' ? [assign(pc.name, vlanForPort(ctx, pc, body.vnid), bondId(pc), { idempotent: true })] : [])], 'PortAssignInput');
  // The request_ips of the original are accepted; the device's addresses stay allocated while it is layer 2.
  portAction('/convert/layer-3', (pc) => [convertLayer3(pc.name)], 'PortConvertLayer3Input');
  portAction('/native-vlan', (pc, { query }) => [setNative(pc.name, vlanForPort(ctx, pc, q1(query, 'vnid')))]);

  app.delete('/ports/:id/native-vlan', async (req) => {
    const p = req.metal!;
    const pc = findPort(ctx, p, (req.params as { id: string }).id);
    ctx.requireWrite(p);
    const { dev } = await editNetwork(ctx, p, pc, [setNative(pc.name, undefined)]);
    return renderPort(ctx, pc, dev);
  });

  const assignments = (pc: PortContext): Record<string, unknown>[] => {
    const dev = ctx.byId(deviceKind, pc.dev.metadata.uid) ?? pc.dev;
    const net = resolveNetwork((dev.spec as DeviceSpec).network, (pc.hw.spec as HardwareSpec).nics);
    const port = portOf(net, pc.name);
    const vlans = projectVlans(ctx, dev.metadata.namespace!);
    const pid = portId(pc.hw.metadata.uid, pc.name);
    return port.vlans.flatMap((n) => {
      const v = vlans.get(n);
      if (!v) return [];
      return [
        {
          id: uuidV5(`vlan-assignment/${pid}/${v.metadata.uid}`),
          created_at: v.metadata.creationTimestamp,
          updated_at: v.metadata.creationTimestamp,
          native: port.nativeVlan === n,
          state: 'assigned',
          vlan: (v.spec as VirtualNetworkSpec).vxlan,
          port: href(`/ports/${pid}`),
          virtual_network: href(`/virtual-networks/${v.metadata.uid}`),
        },
      ];
    });
  };

  app.get('/ports/:id/vlan-assignments', async (req) => ({ vlan_assignments: assignments(findPort(ctx, req.metal!, (req.params as { id: string }).id)) }));

  app.get('/ports/:id/vlan-assignments/:assignment_id', async (req) => {
    const { id, assignment_id } = req.params as { id: string; assignment_id: string };
    const a = assignments(findPort(ctx, req.metal!, id)).find((x) => x.id === assignment_id);
    if (!a) throw ApiError.notFound('VLAN assignment', assignment_id);
    return a;
  });

  const batchesOf = (pc: PortContext): StoredObject[] =>
    ctx
      .list(vlanAssignmentBatchKind, pc.dev.metadata.namespace)
      .filter((b) => b.metadata.ownerReferences?.some((o) => o.uid === pc.dev.metadata.uid) && (b.spec as VLANAssignmentBatchSpec).port === pc.name)
      .sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp) || a.metadata.name.localeCompare(b.metadata.name));

  app.get('/ports/:id/vlan-assignments/batches', async (req) => {
    const pc = findPort(ctx, req.metal!, (req.params as { id: string }).id);
    return { batches: batchesOf(pc).map((b) => batchJson(ctx, b, pc)) };
  });

  app.get('/ports/:id/vlan-assignments/batches/:batch_id', async (req) => {
    const { id, batch_id } = req.params as { id: string; batch_id: string };
    const pc = findPort(ctx, req.metal!, id);
    const b = batchesOf(pc).find((x) => x.metadata.uid === batch_id);
    if (!b) throw ApiError.notFound('VLAN assignment batch', batch_id);
    return batchJson(ctx, b, pc);
  });

  app.post('/ports/:id/vlan-assignments/batches', async (req, reply) => {
    const p = req.metal!;
    const pc = findPort(ctx, p, (req.params as { id: string }).id);
    ctx.requireWrite(p);
    const input = jsonBody<BatchInput>(req, 'PortVlanAssignmentBatchCreateInput');
    const items = input.vlan_assignments ?? [];
    if (!items.length) throw unprocessable('vlan_assignments: name at least one VLAN to assign or unassign');
    const problems: string[] = [];
    const planned: VLANAssignmentBatchSpec['assignments'] = [];
    const edits: Edit[] = [];
    items.forEach((it, i) => {
      try {
        const v = vlanForPort(ctx, pc, it.vlan, `vlan_assignments[${i}].vlan`);
        const state = it.state ?? 'assigned';
        planned.push({ vlan: (v.spec as VirtualNetworkSpec).vxlan, virtualNetwork: v.metadata.name, state, ...(it.native !== undefined ? { native: it.native } : {}) });
        if (state === 'assigned') {
          edits.push(assign(pc.name, v, bondId(pc), { idempotent: true }));
          if (it.native) edits.push(setNative(pc.name, v));
        } else {
          if (it.native) throw unprocessable(`vlan_assignments[${i}]: an unassigned VLAN cannot be native`);
          edits.push(unassign(pc.name, v, { idempotent: true }));
        }
      } catch (e) {
        problems.push(e instanceof Error ? e.message : String(e));
      }
    });
    if (problems.length) throw unprocessable(...problems);
    const { dev, changed } = await editNetwork(ctx, p, pc, edits);
    const b = await ctx.registry.create(
      vlanAssignmentBatchKind,
      {
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'VLANAssignmentBatch',
        metadata: {
          generateName: `${dev.metadata.name}-${pc.name}-`,
          namespace: dev.metadata.namespace,
          ownerReferences: [{ apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', name: dev.metadata.name, uid: dev.metadata.uid }],
        },
        spec: { device: dev.metadata.name, port: pc.name, assignments: planned, ...(changed ? { deviceGeneration: dev.metadata.generation } : {}) } satisfies VLANAssignmentBatchSpec,
      },
      { fieldManager: fieldManager(p) },
    );
    return reply.code(201).send(batchJson(ctx, ctx.byId(vlanAssignmentBatchKind, b.metadata.uid) ?? b, pc));
  });
}
