// The metadata service for installed OSes: cloud-init's NoCloud datasource over HTTP at
// `/metadata/nocloud/<instance token>/` (plain HTTP: the OS cannot trust a CA yet). The token names one
// device, so each machine sees only its own meta-data, user-data and keys. The phone-home post completes the
// provisioning workflow's last action.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { DeviceSpec, DeviceStatus } from '../kinds/device.js';
import { USER_SSH_KEY_NAMESPACE, type SSHKeySpec } from '../kinds/ssh-key.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import type { ObjectClient } from '../runtime/client.js';
import { formatTime } from '../runtime/conditions.js';
import { completeAction, currentAction } from '../controllers/workflow/state.js';
import { updateWorkflowStatus } from '../controllers/workflow/write.js';
import { userDataOf } from '../controllers/cloudconfig/user-data.js';
import type { TokenSigner } from './tokens.js';

export interface MetadataDeps {
  client: ObjectClient;
  deviceKind: KindDeclaration;
  workflowKind: KindDeclaration;
  sshKeyKind: KindDeclaration;
  signer: TokenSigner;
  now?: () => number;
}

/** The NoCloud seed URL of a device (what the write-datasource action writes onto the disk). */
export function seedUrl(plainUrl: string, signer: TokenSigner, device: StoredObject): string {
  const token = signer.sign({ kind: 'instance', namespace: device.metadata.namespace!, device: device.metadata.name, uid: device.metadata.uid });
  return `${plainUrl}/metadata/nocloud/${token}/`;
}

export function registerMetadataService(app: FastifyInstance, deps: MetadataDeps): void {
  const now = deps.now ?? Date.now;

  const deviceOf = async (token: string, reply: FastifyReply): Promise<StoredObject | undefined> => {
    const c = deps.signer.verify(token);
    if (!c || c.kind !== 'instance') {
      void reply.code(403).type('text/plain').send('this metadata token is not valid\n');
      return undefined;
    }
    const dev = await deps.client.get(deps.deviceKind, c.namespace, c.device);
    if (!dev || dev.metadata.uid !== c.uid) {
      void reply.code(404).type('text/plain').send('the device of this token does not exist any more\n');
      return undefined;
    }
    return dev;
  };

  const keysOf = async (dev: StoredObject): Promise<string[]> => {
    const spec = dev.spec as DeviceSpec;
    const all = (await deps.client.list(deps.sshKeyKind, { namespace: dev.metadata.namespace })).items;
    // Absent: every project key; a list (even an empty one): exactly those.
    const chosen = spec.sshKeys ? all.filter((k) => spec.sshKeys!.includes(k.metadata.name)) : all;
    const users = new Set(spec.sshKeyUsers ?? []);
    const personal = users.size ? (await deps.client.list(deps.sshKeyKind, { namespace: USER_SSH_KEY_NAMESPACE })).items.filter((k) => users.has((k.spec as SSHKeySpec).owner ?? '')) : [];
    return [...new Set([...chosen, ...personal].map((k) => (k.spec as SSHKeySpec).key.trim()))];
  };

  app.get('/metadata/nocloud/:token/meta-data', async (req, reply) => {
    const dev = await deviceOf((req.params as { token: string }).token, reply);
    if (!dev) return reply;
    const spec = dev.spec as DeviceSpec;
    const st = (dev.status ?? {}) as DeviceStatus;
    const keys = await keysOf(dev);
    const lines = [
      `instance-id: ${dev.metadata.uid}`,
      `local-hostname: ${spec.hostname ?? dev.metadata.name}`,
      ...(st.metro ? [`metro: ${st.metro}`] : []),
      ...(st.facility ? [`facility: ${st.facility}`] : []),
      `plan: ${spec.plan}`,
      ...(keys.length ? ['public-keys:', ...keys.map((k) => `  - ${JSON.stringify(k)}`)] : []),
    ];
    return reply.type('text/plain; charset=utf-8').send(lines.join('\n') + '\n');
  });

  app.get('/metadata/nocloud/:token/user-data', async (req, reply) => {
    const dev = await deviceOf((req.params as { token: string }).token, reply);
    if (!dev) return reply;
    const ud = await userDataOf(deps.client, dev);
    if (!ud) return reply.type('text/plain; charset=utf-8').send('#cloud-config\n{}\n');
    // Gzipped user data goes as it is: cloud-init unzips it.
    const gzip = ud.bytes[0] === 0x1f && ud.bytes[1] === 0x8b;
    return reply.type(gzip ? 'application/gzip' : 'text/plain; charset=utf-8').send(gzip ? ud.bytes : ud.text);
  });

  app.get('/metadata/nocloud/:token/vendor-data', async (req, reply) => {
    const dev = await deviceOf((req.params as { token: string }).token, reply);
    if (!dev) return reply;
    return reply.type('text/plain; charset=utf-8').send('');
  });

  app.post('/metadata/nocloud/:token/phone-home', async (req, reply) => {
    const dev = await deviceOf((req.params as { token: string }).token, reply);
    if (!dev) return reply;
    const wfName = (dev.status as DeviceStatus | undefined)?.workflow;
    if (wfName) {
      const at = formatTime(now());
      await updateWorkflowStatus(deps.client, deps.workflowKind, dev.metadata.namespace!, wfName, (spec, status) => {
        const cur = currentAction(spec, status);
        if (!cur || cur.action.type !== 'phone-home') return undefined;
        return completeAction(spec, status!, cur.index, { ok: true, message: 'the installed OS phoned home' }, at);
      });
    }
    return reply.code(200).type('text/plain').send('ok\n');
  });
}
