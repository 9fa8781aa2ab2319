// The network boot service, `/boot/v1` (plain HTTP: firmware cannot trust a CA). A machine's iPXE asks for its
// script by MAC; the answer depends on what the machine should do now: boot the provisioning agent, chain a
// custom iPXE script, or leave the network and boot its disk. An agent boot — and with it an agent token — is
// only started when metalplane itself powered the machine into PXE, once per power-on, bound to the address
// that fetched the script (boots.ts; docs/provisioning-protocol.md, "Threat model"). The script text never
// names a tenant or a device: anyone on the provisioning network can read it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DeviceSpec } from '../kinds/device.js';
import type { HardwareSpec, HardwareStatus } from '../kinds/hardware.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import type { WorkflowSpec, WorkflowStatus } from '../kinds/workflow.js';
import type { ObjectClient } from '../runtime/client.js';
import type { Informer } from '../runtime/informer.js';
import type { Logger } from '../runtime/logger.js';
import { formatTime } from '../runtime/conditions.js';
import { completeAction, currentAction } from '../controllers/workflow/state.js';
import { updateWorkflowStatus } from '../controllers/workflow/write.js';
import { scriptUrlProblem } from '../lib/url.js';
import type { AgentHub } from './agent-hub.js';
import type { BootRecords } from './boots.js';
import { normalizePeer, type TokenSigner } from './tokens.js';

export const MacIndex = 'mac';

export interface BootDeps {
  client: ObjectClient;
  hardware: Informer;
  hardwareKind: KindDeclaration;
  workflowKind: KindDeclaration;
  deviceKind: KindDeclaration;
  signer: TokenSigner;
  boots: BootRecords;
  /** The URLs machines reach us at, and the CA they pin. */
  urls: () => { plain: string; tls: string };
  caPem: string;
  logger?: Logger;
  now?: () => number;
  /** Woken when a machine's workflow changes (the server wakes it on every workflow update). */
  hub?: Pick<AgentHub, 'wait'>;
  /** How long a fetch may wait for a power-on that is about to be sent to become `running` (default 3000 ms). */
  powerOnWaitMs?: number;
  /** Where the agent's kernel and initramfs are (`vmlinuz`, `initramfs`; e.g. <data dir>/boot), served at /boot/v1/assets/. */
  assetsDir?: string;
  /** Where OS images are (e.g. <data dir>/images), served at /boot/v1/images/ to machines. */
  imagesDir?: string;
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
  // Who the machine belongs to is nobody's business on the provisioning network.
  if (st.claim && (st.state === 'in-use' || st.state === 'provisioning')) return { boot: 'disk', why: 'the machine is in use: boot its disk' };
  return { boot: 'agent' };
}

/**
 * The power-on into PXE that metalplane made and whose boot it is waiting for, as a key unique to that
 * power-on; undefined when no network boot is expected. In the workflow state machine
 * (src/controllers/workflow) that is: the current action is `power-on-pxe` and `running` (the BMC call is
 * under way), or the current action is `register` and the `power-on-pxe` before it `succeeded` (the machine
 * is powered and its agent has not registered yet). A skipped power-on (warm pool) expects no boot: the agent
 * already runs. A restart of the workflow or another attempt at the power-on is a new power-on.
 */
export function expectedPowerOn(workflow: StoredObject | undefined): string | undefined {
  if (!workflow) return undefined;
  const spec = workflow.spec as WorkflowSpec;
  const status = workflow.status as WorkflowStatus | undefined;
  const cur = currentAction(spec, status);
  if (!cur) return undefined;
  let i: number | undefined;
  if (cur.action.type === 'power-on-pxe' && cur.state.state === 'running') i = cur.index;
  else if (cur.action.type === 'register') {
    for (let j = cur.index - 1; j >= 0; j--) {
      if (spec.actions[j]!.type !== 'power-on-pxe') continue;
      if (status!.actions?.[j]?.state === 'succeeded') i = j;
      break;
    }
  }
  if (i === undefined) return undefined;
  return `${workflow.metadata.uid}/${status!.restarts ?? 0}/${i}/${status!.actions?.[i]?.attempts ?? 0}`;
}

const script = (...lines: string[]): string => ['#!ipxe', ...lines, ''].join('\n');

export function registerBootService(app: FastifyInstance, deps: BootDeps): void {
  const now = deps.now ?? Date.now;
  deps.hardware.addIndex(MacIndex, (o) => ((o.spec as HardwareSpec | undefined)?.nics ?? []).map((n) => n.mac));
  const caDer = Buffer.from(deps.caPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const caSha256 = createHash('sha256').update(caDer).digest('hex');

  app.get('/boot/v1/ca.crt', async (_req, reply) => reply.type('application/x-pem-file').send(deps.caPem));

  // A refusal is a 4xx with a script that says why and exits: firmware shows the echo and retries PXE.
  const refuse = (reply: FastifyReply, code: number, why: string): FastifyReply => reply.code(code).send(script(`echo metalplane: ${why}`, 'exit 1'));

  app.get('/boot/v1/ipxe', async (req, reply) => {
    const mac = String((req.query as Record<string, unknown>).mac ?? '').toLowerCase();
    reply.type('text/plain; charset=utf-8');
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) {
      return refuse(reply, 400, `?mac= must be a MAC address like b4:96:91:0a:1b:2c, not ${JSON.stringify(mac.slice(0, 40))}`);
    }
    const known = deps.hardware.cache.byIndex(MacIndex, mac)[0];
    // The cache finds the machine; the decision reads it fresh: a machine powered into PXE a moment ago asks at
    // once (a fast simulated one, or a real one already in firmware), maybe before the cache has its new workflow.
    const hw = known ? await deps.client.get(deps.hardwareKind, undefined, known.metadata.name) : undefined;
    if (!hw) return reply.code(404).send(script(`echo metalplane: no Hardware has NIC ${mac}; enroll the machine first`, 'exit 1'));
    const st = (hw.status ?? {}) as HardwareStatus;
    const wf = st.workflow ? await workflowOf(hw.metadata.name, st.workflow) : undefined;
    const dev = st.claim ? await deps.client.get(deps.deviceKind, st.claim.namespace, st.claim.name) : undefined;
    const d = decideBoot(hw, wf, dev);
    if (d.boot === 'disk') return reply.send(script(`echo metalplane: ${d.why}`, 'exit'));
    if (d.boot === 'chain') {
      // Admission refuses such URLs; one stored before it did must still not add lines to the script.
      const problem = scriptUrlProblem(d.url);
      if (problem) return refuse(reply, 409, `the custom iPXE script URL of this machine is refused: it ${problem}`);
      return reply.send(script(`chain ${d.url}`));
    }
    const powerOn = expectedPowerOn(wf);
    if (!powerOn || !wf) {
      return refuse(reply, 403, 'no network boot of this machine is expected: metalplane starts an agent only after it powered the machine into PXE');
    }
    const peer = normalizePeer(req.raw.socket.remoteAddress);
    const nowS = Math.floor(now() / 1000);
    const out = await deps.boots.begin(hw.metadata.name, {
      hardwareUid: hw.metadata.uid,
      powerOn,
      workflow: { namespace: wf.metadata.namespace!, name: wf.metadata.name },
      peer,
      now: nowS,
    });
    if (out.kind === 'contested') {
      if (out.first) await failContested(wf, out.record.peer, peer);
      return refuse(reply, 409, 'this power-on was already answered for another address; the boot is revoked and the workflow failed (BootContested)');
    }
    const { bootId, issuedAt } = out.record;
    const token = deps.signer.agentToken(hw.metadata.name, bootId, issuedAt);
    const { plain, tls } = deps.urls();
    return reply.send(
      script(
        `kernel ${plain}/boot/v1/assets/vmlinuz metalplane.url=${tls} metalplane.ca_sha256=${caSha256} metalplane.hardware=${hw.metadata.name} metalplane.boot=${bootId} metalplane.token=${token} console=ttyS0`,
        `initrd ${plain}/boot/v1/assets/initramfs`,
        'boot',
      ),
    );
  });

  /**
   * The machine's workflow, once a power-on into PXE that is about to be sent is marked `running`: a machine
   * can be quick enough (or already in firmware) to ask in the moment between the decision to power it on and
   * that mark. Waiting is bounded and woken by the workflow's own updates.
   */
  async function workflowOf(hardware: string, ref: { namespace: string; name: string }): Promise<StoredObject | undefined> {
    const deadline = now() + (deps.powerOnWaitMs ?? 3000);
    for (;;) {
      const wf = await deps.client.get(deps.workflowKind, ref.namespace, ref.name);
      const cur = wf ? currentAction(wf.spec as WorkflowSpec, wf.status as WorkflowStatus | undefined) : undefined;
      const left = deadline - now();
      if (!deps.hub || !cur || cur.action.type !== 'power-on-pxe' || cur.state.state !== 'pending' || left <= 0) return wf;
      await deps.hub.wait(hardware, Math.min(left, 250));
    }
  }

  /**
   * Two addresses asked for the boot of one power-on: one of them is not the machine, and we cannot tell which.
   * The boot is revoked (its token is refused from now on) and the workflow fails where it is, saying so, rather
   * than going on with a machine that may be an impostor; the operator sees both addresses.
   */
  async function failContested(wf: StoredObject, first: string, second: string): Promise<void> {
    const message = `the iPXE script of this power-on was fetched from ${first} and then from ${second}: another host on the provisioning network answered for this machine, so its boot was revoked`;
    deps.logger?.warn({ workflow: `${wf.metadata.namespace}/${wf.metadata.name}`, first, second }, 'boot contested');
    await updateWorkflowStatus(deps.client, deps.workflowKind, wf.metadata.namespace!, wf.metadata.name, (spec, status) => {
      const cur = currentAction(spec, status);
      if (!cur) return undefined;
      return completeAction(spec, status!, cur.index, { ok: false, reason: 'BootContested', message }, formatTime(now()));
    });
  }

  // The agent's kernel and initramfs are the operator's to provide (`npm run build:boot-image`, or e.g. a HookOS
  // build) and OS images too (lab/build-os-image.sh); the simulated machines download neither.
  const serveFile = (dir: string | undefined, what: string) => async (req: FastifyRequest, reply: FastifyReply) => {
    const { name } = req.params as { name: string };
    // One plain file name: no directories, no dot files.
    if (!dir || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) return reply.code(404).type('text/plain').send(`${what} ${name.slice(0, 80)} is not installed on this server\n`);
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) return reply.code(404).type('text/plain').send(`${what} ${name} is not installed on this server (looked in ${dir})\n`);
    return reply.type('application/octet-stream').header('content-length', st.size).send(createReadStream(path));
  };
  app.get('/boot/v1/assets/:name', serveFile(deps.assetsDir, 'boot asset'));
  app.get('/boot/v1/images/:name', serveFile(deps.imagesDir, 'image'));
}
