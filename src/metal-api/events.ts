// Events and usage. Events are the Kubernetes Events of a project's objects (what `kubectl get events` shows),
// rendered as the original's Event; usage is computed from the UsageRecord ledger: every device billed by the
// hour at its plan's price, each started hour counted (a device up from 10:20 to 12:05 is billed 2 hours).
import type { FastifyInstance } from 'fastify';
import type { StoredObject } from '../kinds/types.js';
import { eventKind } from '../kinds/core.js';
import { deviceKind } from '../kinds/device.js';
import { billedHours, usageRecordKind, type UsageRecordSpec } from '../kinds/usage-record.js';
import { ApiError } from '../lib/errors.js';
import type { MetalContext } from './context.js';
import { href, paginate, q1, unprocessable, type Query, cmp } from './http.js';

interface KubeEvent {
  involvedObject?: { kind?: string; name?: string; namespace?: string; uid?: string };
  reason?: string;
  message?: string;
  type?: string;
  firstTimestamp?: string;
  lastTimestamp?: string;
  eventTime?: string;
  count?: number;
}

/** The href of what a Kubernetes object is in the Metal API, if it is something there. */
function relationshipOf(ev: KubeEvent): { href: string }[] {
  const o = ev.involvedObject;
  if (!o?.uid) return [];
  if (o.kind === 'Device') return [href(`/devices/${o.uid}`)];
  if (o.kind === 'Namespace') return [href(`/projects/${o.uid}`)];
  if (o.kind === 'IPReservation') return [href(`/ips/${o.uid}`)];
  if (o.kind === 'SSHKey') return [href(`/ssh-keys/${o.uid}`)];
  return [];
}

function eventTime(obj: StoredObject): string {
  const ev = obj as unknown as KubeEvent;
  return ev.lastTimestamp ?? ev.eventTime?.replace(/\.\d+Z$/, 'Z') ?? ev.firstTimestamp ?? obj.metadata.creationTimestamp;
}

/** A Kubernetes Event as the original's Event: `type` is `<what>.<reason>` (`instance.provisioned`), `body` the message. */
export function eventJson(obj: StoredObject): Record<string, unknown> {
  const ev = obj as unknown as KubeEvent;
  const reason = (ev.reason ?? 'event').replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
  // The original's event types name what the event is about as it calls it: `instance.…` for devices.
  const about = ev.involvedObject?.kind;
  const kind = about === 'Device' ? 'instance' : about === 'Namespace' ? 'project' : (about ?? 'object').toLowerCase();
  return {
    id: obj.metadata.uid,
    href: href(`/events/${obj.metadata.uid}`).href,
    type: `${kind}.${reason}`,
    body: ev.message ?? '',
    interpolated: ev.message ?? '',
    state: ev.type === 'Warning' ? 'warning' : 'info',
    created_at: eventTime(obj),
    relationships: relationshipOf(ev),
    modified_by: {},
  };
}

/** Newest first, as the original lists events. */
function newestFirst(a: StoredObject, b: StoredObject): number {
  return cmp(eventTime(b), eventTime(a)) || cmp(b.metadata.name, a.metadata.name);
}

/** The events of the caller's projects, optionally only those about one object (by uid). */
export function eventsOf(ctx: MetalContext, namespaces: string[], aboutUid?: string): StoredObject[] {
  const out: StoredObject[] = [];
  for (const ns of namespaces) {
    for (const ev of ctx.list(eventKind, ns)) {
      if (aboutUid && (ev as unknown as KubeEvent).involvedObject?.uid !== aboutUid) continue;
      out.push(ev);
    }
  }
  return out.sort(newestFirst);
}

function usageFilter(query: Query): { after?: number; before?: number } {
  const parse = (name: string): number | undefined => {
    const v = q1(query, name);
    if (v === undefined || v === '') return undefined;
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw unprocessable(`${name}: must be a date-time such as 2026-01-31T00:00:00Z, got ${JSON.stringify(v)}`);
    return t;
  };
  return { after: parse('created[after]'), before: parse('created[before]') };
}

/** One ledger line as the original's usage: hours (every started hour), price per hour, total in USD. */
export function usageJson(record: StoredObject, nowMs: number): Record<string, string> {
  const r = record.spec as UsageRecordSpec;
  const hours = billedHours(Date.parse(r.start), r.end ? Date.parse(r.end) : nowMs);
  return {
    name: r.hostname ?? r.device,
    type: 'Instance',
    plan: r.plan,
    plan_version: r.plan,
    facility: r.facility ?? r.metro ?? '',
    unit: 'hour',
    quantity: String(hours),
    price: r.pricePerHour.toFixed(2),
    total: (hours * r.pricePerHour).toFixed(2),
  };
}

function inWindow(record: StoredObject, f: { after?: number; before?: number }): boolean {
  const start = Date.parse((record.spec as UsageRecordSpec).start);
  return (f.after === undefined || start >= f.after) && (f.before === undefined || start <= f.before);
}

export function registerEventRoutes(app: FastifyInstance, ctx: MetalContext): void {
  app.get('/events', async (req) => {
    const p = req.metal!;
    const query = req.query as Query;
    const page = paginate(eventsOf(ctx, ctx.projects(p).map((ns) => ns.metadata.name)), query, '/events');
    return { events: page.items.map((e) => eventJson(e)), meta: page.meta };
  });

  app.get('/events/:id', async (req) => {
    const p = req.metal!;
    const { id } = req.params as { id: string };
    const ev = ctx.byId(eventKind, id);
    const ns = ev?.metadata.namespace ? ctx.registryNamespace(ev.metadata.namespace) : undefined;
    if (!ev || !ns || !ctx.canSeeProject(p, ns)) throw ApiError.notFound('event', id);
    return eventJson(ev);
  });

  app.get('/projects/:id/events', async (req) => {
    const p = req.metal!;
    const ns = ctx.project(p, (req.params as { id: string }).id);
    const query = req.query as Query;
    const page = paginate(eventsOf(ctx, [ns.metadata.name]), query, `/projects/${ns.metadata.uid}/events`);
    return { events: page.items.map((e) => eventJson(e)), meta: page.meta };
  });

  app.get('/projects/:id/usages', async (req) => {
    const p = req.metal!;
    const ns = ctx.project(p, (req.params as { id: string }).id);
    const f = usageFilter(req.query as Query);
    const now = ctx.clock.now();
    const records = ctx
      .list(usageRecordKind)
      .filter((r) => (r.spec as UsageRecordSpec).projectUid === ns.metadata.uid || (r.spec as UsageRecordSpec).project === ns.metadata.name)
      .filter((r) => inWindow(r, f))
      .sort((a, b) => cmp((a.spec as UsageRecordSpec).start, (b.spec as UsageRecordSpec).start));
    return { usages: records.map((r) => usageJson(r, now)) };
  });

  app.get('/devices/:id/usages', async (req) => {
    const p = req.metal!;
    const { id } = req.params as { id: string };
    // A deleted device's usage stays readable to its project: the record outlives the device.
    const record = ctx.informer(usageRecordKind).cache.getByName(undefined, id);
    const dev = ctx.byId(deviceKind, id);
    const nsName = dev?.metadata.namespace ?? (record?.spec as UsageRecordSpec | undefined)?.project;
    const ns = nsName ? ctx.registryNamespace(nsName) : undefined;
    if ((!dev && !record) || !ns || !ctx.canSeeProject(p, ns)) throw ApiError.notFound('device', id);
    const f = usageFilter(req.query as Query);
    const usages = record && inWindow(record, f) ? [usageJson(record, ctx.clock.now())] : [];
    return { usages: usages.map((u) => ({ quantity: u.quantity, total: u.total, unit: u.unit })) };
  });
}
