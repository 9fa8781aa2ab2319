// The network boot service, `/boot/v1` (plain HTTP: firmware cannot trust a CA). A machine's iPXE asks for its
// script by MAC; the answer depends on what the machine should do now: boot the provisioning agent (new or
// pooled machines, and any running workflow that still needs the agent), chain a custom iPXE script, or leave
// the network and boot its disk.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { DeviceSpec } from '../kinds/device.js';
import type { HardwareSpec, HardwareStatus } from '../kinds/hardware.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import type { WorkflowSpec, WorkflowStatus } from '../kinds/workflow.js';
import type { ObjectClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import { currentAction } from '../controllers/workflow/state.js';
import { newBootId, type TokenSigner } from './tokens.js';

export const MacIndex = 'mac';

export interface BootDeps {
  client: ObjectClient;
  hardware: Informer;
  workflowKind: KindDeclaration;
  deviceKind: KindDeclaration;
  signer: TokenSigner;
  /** The URLs machines reach us at, and the CA they pin. */
  urls: () => { plain: string; tls: string };
  caPem: string;
}

/** The PXE decision as data, so it is testable without HTTP. */
export type BootDecision = { boot: 'agent' } | { boot: 'disk'; why: string } | { boot: 'chain'; url: string };

export function decideBoot(hw: StoredObject, workflow: StoredObject | undefined, device: StoredObject | undefined): BootDecision {
  const st = (hw.status ?? {}) as HardwareStatus;
  const dspec = device?.spec as DeviceSpec | undefined;
  if (workflow) {
    const spec = workflow.spec as WorkflowSpec;
    const cur = currentAction(spec, workflow.status as WorkflowStatus | undefined);
    if (cur) {
      const rest = spec.actions.slice(cur.index);
      if (dspec?.operatingSystem === 'custom_ipxe' && spec.purpose !== 'deprovision' && spec.purpose !== 'rescue' && dspec.ipxeScriptUrl) {
        return { boot: 'chain', url: dspec.ipxeScriptUrl };
      }
      if (rest.some((a) => a.executor === 'agent') || cur.action.type === 'power-on-pxe') return { boot: 'agent' };
      return { boot: 'disk', why: 'the workflow has no more agent actions: boot the installed OS' };
    }
  }
  if (dspec?.operatingSystem === 'custom_ipxe' && dspec.alwaysPxe && dspec.ipxeScriptUrl) return { boot: 'chain', url: dspec.ipxeScriptUrl };
  if (st.claim && (st.state === 'in-use' || st.state === 'provisioning')) return { boot: 'disk', why: `in use by ${st.claim.namespace}/${st.claim.name}` };
  return { boot: 'agent' };
}

export function registerBootService(app: FastifyInstance, deps: BootDeps): void {
  deps.hardware.addIndex(MacIndex, (o) => ((o.spec as HardwareSpec | undefined)?.nics ?? []).map((n) => n.mac));
  const caDer = Buffer.from(deps.caPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const caSha256 = createHash('sha256').update(caDer).digest('hex');

  app.get('/boot/v1/ca.crt', async (_req, reply) => reply.type('application/x-pem-file').send(deps.caPem));

  app.get('/boot/v1/ipxe', async (req, reply) => {
    const mac = String((req.query as Record<string, unknown>).mac ?? '').toLowerCase();
    reply.type('text/plain; charset=utf-8');
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) {
      return reply.code(400).send(`#!ipxe\necho metalplane: ?mac= must be a MAC address like b4:96:91:0a:1b:2c, not ${JSON.stringify(mac)}\nexit 1\n`);
    }
    const hw = deps.hardware.cache.byIndex(MacIndex, mac)[0];
    if (!hw) return reply.code(404).send(`#!ipxe\necho metalplane: no Hardware has NIC ${mac}; enroll the machine first\nexit 1\n`);
    const st = (hw.status ?? {}) as HardwareStatus;
    const wf = st.workflow ? await deps.client.get(deps.workflowKind, st.workflow.namespace, st.workflow.name) : undefined;
    const dev = st.claim ? await deps.client.get(deps.deviceKind, st.claim.namespace, st.claim.name) : undefined;
    const d = decideBoot(hw, wf, dev);
    if (d.boot === 'disk') return reply.send(`#!ipxe\necho metalplane: ${d.why}\nexit\n`);
    if (d.boot === 'chain') return reply.send(`#!ipxe\nchain ${d.url}\n`);
    const bootId = newBootId();
    const token = deps.signer.sign({ kind: 'agent', hardware: hw.metadata.name, bootId });
    const { plain, tls } = deps.urls();
    return reply.send(
      [
        '#!ipxe',
        `kernel ${plain}/boot/v1/assets/vmlinuz metalplane.url=${tls} metalplane.ca_sha256=${caSha256} metalplane.hardware=${hw.metadata.name} metalplane.boot=${bootId} metalplane.token=${token} console=ttyS0`,
        `initrd ${plain}/boot/v1/assets/initramfs`,
        'boot',
        '',
      ].join('\n'),
    );
  });

  // The agent's kernel and initramfs are the operator's to provide (e.g. a HookOS build); the simulated
  // machines do not download them.
  app.get('/boot/v1/assets/:name', async (req, reply) => {
    const { name } = req.params as { name: string };
    return reply.code(404).type('text/plain').send(`boot asset ${name} is not installed on this server\n`);
  });
}
