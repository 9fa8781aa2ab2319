// SSH keys on the Metal API: a user's personal keys (`/ssh-keys`: SSHKey objects with spec.owner, kept in the
// metalplane-system namespace, since they belong to a user rather than to a project) and project keys
// (`/projects/{id}/ssh-keys`: SSHKey objects in the project's namespace). The kind validates the key and
// computes its fingerprint; here only who may see and change which key is decided.
import type { FastifyInstance } from 'fastify';
import { sshKeyKind, USER_SSH_KEY_NAMESPACE, type SSHKeySpec } from '../kinds/ssh-key.js';
import type { KubeObject, StoredObject } from '../kinds/types.js';
import { ApiError, isConflict } from '../lib/errors.js';
import type { MetalContext, Principal } from './context.js';
import { sshKeyJson } from './device-json.js';
import { deviceWorld } from './devices.js';
import { jsonBody, q1, type Query, unprocessable, cmp } from './http.js';

interface KeyInput {
  key?: string;
  label?: string;
  tags?: string[];
  instances_ids?: string[];
}

/** The kind's `spec.key` / `spec.label` causes as the Metal API's `key` / `label`. */
function inKeyFields(err: unknown): unknown {
  if (!(err instanceof ApiError) || err.reason !== 'Invalid' || !err.details?.causes?.length) return err;
  const causes = err.details.causes.map((c) => ({ ...c, field: c.field?.replace(/^spec\./, '') }));
  return new ApiError(422, 'Invalid', causes.map((c) => `${c.field ? c.field + ': ' : ''}${c.message}`).join('; '), { ...err.details, causes });
}

function matches(k: StoredObject, search: string | undefined): boolean {
  if (!search) return true;
  const s = k.spec as SSHKeySpec;
  const needle = search.toLowerCase();
  return [s.label, s.key, (k.status as { fingerprint?: string } | undefined)?.fingerprint].some((f) => f?.toLowerCase().includes(needle));
}

function byAge(a: StoredObject, b: StoredObject): number {
  return cmp(a.metadata.creationTimestamp, b.metadata.creationTimestamp) || cmp(a.metadata.name, b.metadata.name);
}

/** A DNS-safe prefix for a key's object name from its label. */
function namePrefix(label: string): string {
  const base = label.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '');
  return `${base || 'key'}-`;
}

export function registerSshKeyRoutes(app: FastifyInstance, ctx: MetalContext): void {
  const world = deviceWorld(ctx);
  const userKeys = (p: Principal): StoredObject[] => ctx.list(sshKeyKind, USER_SSH_KEY_NAMESPACE).filter((k) => (k.spec as SSHKeySpec).owner === p.user.metadata.name);

  /** A key by id if the caller may see it: their own personal key (an admin: anyone's), or one of a visible project. */
  const keyById = (p: Principal, id: string): StoredObject => {
    const k = ctx.byId(sshKeyKind, id);
    const owner = (k?.spec as SSHKeySpec | undefined)?.owner;
    if (k && k.metadata.namespace === USER_SSH_KEY_NAMESPACE && owner) {
      if (!p.project && (owner === p.user.metadata.name || p.admin)) return k;
    } else if (k) {
      const ns = ctx.registryNamespace(k.metadata.namespace!);
      if (ns && ctx.canSeeProject(p, ns)) return k;
    }
    throw ApiError.notFound('ssh key', id);
  };

  const create = async (p: Principal, namespace: string, owner: string | undefined, input: KeyInput): Promise<StoredObject> => {
    ctx.requireWrite(p);
    if (!input.key) throw unprocessable('key: the public key is required, e.g. "ssh-ed25519 AAAA… alice@laptop"');
    if (input.instances_ids?.length) throw unprocessable('instances_ids: keys are chosen per device (project_ssh_keys / user_ssh_keys when it is created); leave instances_ids out');
    const key = input.key.trim();
    const siblings = owner ? ctx.list(sshKeyKind, namespace).filter((k) => (k.spec as SSHKeySpec).owner === owner) : ctx.list(sshKeyKind, namespace);
    const same = siblings.find((k) => (k.spec as SSHKeySpec).key.trim().split(/\s+/).slice(0, 2).join(' ') === key.split(/\s+/).slice(0, 2).join(' '));
    if (same) throw unprocessable(`key: this key already exists here as ${JSON.stringify((same.spec as SSHKeySpec).label ?? same.metadata.name)} (id ${same.metadata.uid})`);
    const label = input.label ?? key.split(/\s+/)[2] ?? 'key';
    const spec: SSHKeySpec = { key, label, ...(owner ? { owner } : {}), ...(input.tags?.length ? { tags: [...new Set(input.tags)] } : {}) };
    const obj: KubeObject = { apiVersion: 'metalplane.dev/v1alpha1', kind: 'SSHKey', metadata: { generateName: namePrefix(label), namespace }, spec: spec as unknown as Record<string, unknown> };
    try {
      return await ctx.registry.create(sshKeyKind, obj, { fieldManager: `metal-api/${p.user.metadata.name}` });
    } catch (e) {
      throw inKeyFields(e);
    }
  };
  const settled = (k: StoredObject): StoredObject => ctx.byId(sshKeyKind, k.metadata.uid) ?? k;

  app.get('/ssh-keys', async (req) => {
    const p = req.metal!;
    const search = q1(req.query as Query, 'search');
    // A project key acts for its project: it lists that project's keys (it has no personal ones).
    const keys = p.project ? ctx.list(sshKeyKind, p.project) : userKeys(p);
    return { ssh_keys: keys.filter((k) => matches(k, search)).sort(byAge).map((k) => sshKeyJson(k, world)) };
  });

  app.post('/ssh-keys', async (req, reply) => {
    const p = req.metal!;
    ctx.requireUserKey(p, 'create personal SSH keys');
    const input = jsonBody<KeyInput>(req, 'SSHKeyCreateInput');
    const k = await create(p, USER_SSH_KEY_NAMESPACE, p.user.metadata.name, input);
    return reply.code(201).send(sshKeyJson(settled(k), world));
  });

  app.get('/projects/:id/ssh-keys', async (req) => {
    const ns = ctx.project(req.metal!, (req.params as { id: string }).id);
    const query = req.query as Query;
    const search = q1(query, 'query') ?? q1(query, 'search');
    return { ssh_keys: ctx.list(sshKeyKind, ns.metadata.name).filter((k) => matches(k, search)).sort(byAge).map((k) => sshKeyJson(k, world)) };
  });

  app.post('/projects/:id/ssh-keys', async (req, reply) => {
    const p = req.metal!;
    const ns = ctx.project(p, (req.params as { id: string }).id);
    const input = jsonBody<KeyInput>(req, 'SSHKeyCreateInput');
    const k = await create(p, ns.metadata.name, undefined, input);
    return reply.code(201).send(sshKeyJson(settled(k), world));
  });

  app.get('/ssh-keys/:id', async (req) => sshKeyJson(keyById(req.metal!, (req.params as { id: string }).id), world));

  app.put('/ssh-keys/:id', async (req) => {
    const p = req.metal!;
    let k = keyById(p, (req.params as { id: string }).id);
    ctx.requireWrite(p);
    const input = jsonBody<KeyInput>(req, 'SSHKeyInput');
    if (input.key !== undefined && !input.key.trim()) throw unprocessable('key: must not be empty');
    for (let attempt = 0; ; attempt++) {
      const spec: SSHKeySpec = { ...(k.spec as SSHKeySpec) };
      if (input.key !== undefined) spec.key = input.key.trim();
      if (input.label !== undefined) spec.label = input.label;
      if (input.tags !== undefined) spec.tags = [...new Set(input.tags)];
      try {
        const out = await ctx.registry.update(sshKeyKind, { ...k, spec: spec as unknown as Record<string, unknown> }, { fieldManager: `metal-api/${p.user.metadata.name}` });
        return sshKeyJson(settled(out), world);
      } catch (e) {
        if (isConflict(e) && attempt < 5) {
          const fresh = await ctx.registry.get(sshKeyKind, k.metadata.namespace, k.metadata.name);
          if (!fresh) throw ApiError.notFound('ssh key', k.metadata.uid);
          k = fresh;
          continue;
        }
        throw inKeyFields(e);
      }
    }
  });

  app.delete('/ssh-keys/:id', async (req, reply) => {
    const p = req.metal!;
    const k = keyById(p, (req.params as { id: string }).id);
    ctx.requireWrite(p);
    await ctx.registry.delete(sshKeyKind, k.metadata.namespace, k.metadata.name);
    return reply.code(204).send();
  });
}
