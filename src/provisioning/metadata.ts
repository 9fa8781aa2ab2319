// The metadata service for installed OSes (plain HTTP: the OS cannot trust a CA yet). A machine is known by
// the instance token in its path — the seed URL the agent wrote onto its disk names one device — or, for the
// Equinix-style `/metadata` and `/userdata` at the root, by the address it calls from. Every format renders the
// same MachineView (metadata-view.ts), so a machine sees only its own metadata, user data and keys:
//
//   /metadata/nocloud/<token>/{meta-data,user-data,vendor-data,network-config}   cloud-init NoCloud (the seed URL)
//   /metadata/<token>/metadata, /metadata/<token>/userdata                       Equinix Metal's documents
//   /metadata/<token>/<version>/meta-data/…, /metadata/<token>/<version>/user-data  the EC2 tree
//   POST /metadata/<token>/events (user_state_url), …/phone-home, /metadata/nocloud/<token>/phone-home
//   /metadata, /userdata                                                          by the caller's address
//
// Posts are only ever taken on a token path, so a body is read only after its credential was checked
// (server.ts, machineCredentials). docs/provisioning-protocol.md §4 is the contract.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DeviceIp, DeviceSpec, DeviceStatus } from '../kinds/device.js';
import type { HardwareStatus } from '../kinds/hardware.js';
import { IPAddressDeviceUidIndex, ipAddressDeviceUid, type IPAddressSpec } from '../kinds/ip-address.js';
import { operatingSystemName } from '../kinds/operating-system.js';
import { USER_SSH_KEY_NAMESPACE, type SSHKeySpec } from '../kinds/ssh-key.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import type { ObjectClient } from '../runtime/client.js';
import { formatTime } from '../runtime/conditions.js';
import { EventRecorder } from '../runtime/events.js';
import type { Informer } from '../runtime/informer.js';
import type { Logger } from '../runtime/logger.js';
import { completeAction, currentAction } from '../controllers/workflow/state.js';
import { updateWorkflowStatus } from '../controllers/workflow/write.js';
import { userDataOf, type DeviceUserData } from '../controllers/cloudconfig/user-data.js';
import type { BootRecords } from './boots.js';
import { Ec2Versions, ec2MetaData } from './metadata-ec2.js';
import { equinixMetadata } from './metadata-equinix.js';
import { nocloudMetaData, nocloudNetworkConfigYaml, nocloudVendorData } from './metadata-nocloud.js';
import { MaxUserStateBodyBytes, UserStateLimiter, parseUserState, userStateEvent } from './metadata-user-state.js';
import { machineView, type MachineView } from './metadata-view.js';
import { normalizePeer, type TokenSigner } from './tokens.js';

export interface MetadataDeps {
  client: ObjectClient;
  deviceKind: KindDeclaration;
  workflowKind: KindDeclaration;
  sshKeyKind: KindDeclaration;
  signer: TokenSigner;
  /** The machines' current boots: the address each fetched its iPXE script from (absent: no lookup by boot). */
  boots?: BootRecords;
  /**
   * The IPAddress informer, synced before machines are served: a device's reserved addresses come from its
   * index by device (absent: a list of the project's assignments, which grows with the project).
   */
  ipAddresses?: Informer;
  /**
   * The Device informer, synced before machines are served: a request by address finds the device with that
   * private address from its index (absent: a list of every device, on every such request).
   */
  devices?: Informer;
  /** The plain-HTTP URL machines reach us at, for the URLs in the documents (absent: from the Host header). */
  plainUrl?: () => string;
  logger?: Logger;
  now?: () => number;
}

/** The NoCloud seed URL of a device (what the write-datasource action writes onto the disk). */
export function seedUrl(plainUrl: string, signer: TokenSigner, device: StoredObject): string {
  return `${plainUrl}/metadata/nocloud/${instanceToken(signer, device)}/`;
}

/** The base of a device's token paths: Equinix's documents at `<base>/metadata`, the EC2 tree at `<base>/latest/`. */
export function metadataBaseUrl(plainUrl: string, signer: TokenSigner, device: StoredObject): string {
  return `${plainUrl}/metadata/${instanceToken(signer, device)}`;
}

function instanceToken(signer: TokenSigner, device: StoredObject): string {
  return signer.sign({ kind: 'instance', namespace: device.metadata.namespace!, device: device.metadata.name, uid: device.metadata.uid });
}

/** Devices by the private addresses they were given (what a machine calls the metadata service from). */
const DevicePrivateAddressIndex = 'status.ipAddresses.private';
const devicePrivateAddresses = (dev: StoredObject): string[] => ((dev.status as DeviceStatus | undefined)?.ipAddresses ?? []).filter((a) => !a.public).map((a) => a.address);

/** Which device a request speaks for, or why none. */
type Found = { ok: true; device: StoredObject } | { ok: false; code: number; message: string };

const TokenNotValid = 'this metadata token is not valid';

export function registerMetadataService(app: FastifyInstance, deps: MetadataDeps): void {
  const now = deps.now ?? Date.now;
  const kind = (k: string) => deps.client.kind('metalplane.dev', k);
  const limiter = new UserStateLimiter(now);
  // The limiter decides how many posts a device may make; the recorder's own bucket is wider so it never drops one.
  const recorder = new EventRecorder({ client: deps.client, component: 'metalplane-metadata', clock: { now, setTimeout: () => ({ id: 0 }), clearTimeout: () => undefined }, logger: deps.logger, burst: 100, refillMs: 1000 });

  const byToken = async (token: string): Promise<Found> => {
    const c = deps.signer.verify(token);
    if (!c || c.kind !== 'instance') return { ok: false, code: 403, message: TokenNotValid };
    const dev = await deps.client.get(deps.deviceKind, c.namespace, c.device);
    if (!dev || dev.metadata.uid !== c.uid) return { ok: false, code: 404, message: 'the device of this token does not exist any more' };
    return { ok: true, device: dev };
  };

  const devices = deps.devices;
  if (devices && !devices.cache.hasIndex(DevicePrivateAddressIndex)) devices.addIndex(DevicePrivateAddressIndex, devicePrivateAddresses);
  /**
   * The device of the machine at `peer`: the one whose machine's current boot was started from that address
   * (boots.ts records it; a contested boot counts for nobody), or the one with that private address. An address
   * that matches several devices (the simulated machines all share 127.0.0.1) names none of them.
   */
  const byPeer = async (peer: string): Promise<Found> => {
    const found = new Map<string, StoredObject>();
    for (const { hardware, record } of (await deps.boots?.list()) ?? []) {
      if (record.peer !== peer || record.contested) continue;
      const hw = await deps.client.get(kind('Hardware'), undefined, hardware);
      const claim = (hw?.status as HardwareStatus | undefined)?.claim;
      if (!hw || hw.metadata.uid !== record.hardwareUid || !claim) continue;
      const dev = await deps.client.get(deps.deviceKind, claim.namespace, claim.name);
      if (dev && (dev.status as DeviceStatus | undefined)?.hardware === hardware) found.set(dev.metadata.uid, dev);
    }
    const atPeer = devices ? devices.cache.byIndex(DevicePrivateAddressIndex, peer) : (await deps.client.list(deps.deviceKind)).items.filter((dev) => devicePrivateAddresses(dev).includes(peer));
    for (const dev of atPeer) found.set(dev.metadata.uid, dev);
    const hint = 'or read the token path of the machine\'s seed URL: /metadata/<token>/metadata';
    if (found.size === 0) return { ok: false, code: 404, message: `no device is known at ${peer}: the address must be the one the machine netbooted from or its private address, ${hint}` };
    if (found.size > 1) return { ok: false, code: 409, message: `${found.size} devices are known at ${peer}, so it names none of them; ${hint}` };
    return { ok: true, device: [...found.values()][0]! };
  };

  const tokenOf = (req: FastifyRequest): string => (req.params as { token: string }).token;
  const peerOf = (req: FastifyRequest): string => normalizePeer(req.raw.socket.remoteAddress);

  const sshKeysOf = async (dev: StoredObject): Promise<Array<{ name: string; key: string }>> => {
    const spec = dev.spec as DeviceSpec;
    const all = (await deps.client.list(deps.sshKeyKind, { namespace: dev.metadata.namespace })).items;
    // Absent: every project key; a list (even an empty one): exactly those.
    const chosen = spec.sshKeys ? all.filter((k) => spec.sshKeys!.includes(k.metadata.name)) : all;
    const users = new Set(spec.sshKeyUsers ?? []);
    const personal = users.size ? (await deps.client.list(deps.sshKeyKind, { namespace: USER_SSH_KEY_NAMESPACE })).items.filter((k) => users.has((k.spec as SSHKeySpec).owner ?? '')) : [];
    const seen = new Set<string>();
    const out: Array<{ name: string; key: string }> = [];
    for (const k of [...chosen, ...personal]) {
      const s = k.spec as SSHKeySpec;
      const key = s.key.trim();
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ name: s.label ?? k.metadata.name, key });
    }
    return out;
  };

  /** Reserved addresses assigned to the device after it was created (its own are in status.ipAddresses). */
  const ips = deps.ipAddresses;
  if (ips && !ips.cache.hasIndex(IPAddressDeviceUidIndex)) ips.addIndex(IPAddressDeviceUidIndex, ipAddressDeviceUid);
  const reservedAddressesOf = async (dev: StoredObject): Promise<DeviceIp[]> => {
    const claims = ips
      ? ips.cache.byIndex(IPAddressDeviceUidIndex, dev.metadata.uid)
      : (await deps.client.list(kind('IPAddress'), { fieldSelector: `spec.project=${dev.metadata.namespace},spec.use=assignment` })).items;
    return claims
      .map((c) => c.spec as IPAddressSpec)
      .filter((s) => s.use === 'assignment' && s.project === dev.metadata.namespace && s.device?.uid === dev.metadata.uid && s.reservation !== undefined)
      .map((s) => ({ address: s.address ?? s.network, network: s.network, cidr: s.prefix, gateway: s.gateway ?? s.network, family: s.family, public: s.public }));
  };

  const viewOf = async (dev: StoredObject, req: FastifyRequest): Promise<MachineView> => {
    const spec = dev.spec as DeviceSpec;
    const hwName = (dev.status as DeviceStatus | undefined)?.hardware;
    const [hardware, operatingSystem, sshKeys, extraAddresses] = await Promise.all([
      hwName ? deps.client.get(kind('Hardware'), undefined, hwName) : undefined,
      deps.client.get(kind('OperatingSystem'), undefined, operatingSystemName(spec.operatingSystem)),
      sshKeysOf(dev),
      reservedAddressesOf(dev),
    ]);
    const base = `${deps.plainUrl?.() ?? `http://${req.headers.host ?? 'localhost'}`}/metadata/${instanceToken(deps.signer, dev)}`;
    return machineView({ device: dev, hardware, operatingSystem, sshKeys, extraAddresses, urls: { api: base, phoneHome: `${base}/phone-home`, userState: `${base}/events` } });
  };

  // Each surface answers refusals in its own format: JSON errors for Equinix's, text for cloud-init's files.
  const refuseJson = (reply: FastifyReply, f: Extract<Found, { ok: false }>): FastifyReply => reply.code(f.code).type('application/json').send({ errors: [f.message] });
  const refuseText = (reply: FastifyReply, f: Extract<Found, { ok: false }>): FastifyReply => reply.code(f.code).type('text/plain; charset=utf-8').send(`${f.message}\n`);

  /** User data as bytes: gzipped user data goes as it is (cloud-init unzips it). */
  const sendUserData = (reply: FastifyReply, ud: DeviceUserData): FastifyReply => {
    const gzip = ud.bytes[0] === 0x1f && ud.bytes[1] === 0x8b;
    return reply.type(gzip ? 'application/gzip' : 'text/plain; charset=utf-8').send(gzip ? ud.bytes : ud.text);
  };

  // ---- Equinix Metal: /metadata and /userdata, by address at the root and by token under /metadata/<token>/
  const sendEquinix = async (req: FastifyRequest, reply: FastifyReply, f: Found): Promise<FastifyReply> => {
    if (!f.ok) return refuseJson(reply, f);
    return reply.type('application/json').send(equinixMetadata(await viewOf(f.device, req)));
  };
  const sendEquinixUserData = async (reply: FastifyReply, f: Found): Promise<FastifyReply> => {
    if (!f.ok) return refuseJson(reply, f);
    const ud = await userDataOf(deps.client, f.device);
    return ud ? sendUserData(reply, ud) : reply.type('text/plain; charset=utf-8').send('');
  };
  app.get('/metadata', async (req, reply) => sendEquinix(req, reply, await byPeer(peerOf(req))));
  app.get('/userdata', async (req, reply) => sendEquinixUserData(reply, await byPeer(peerOf(req))));
  app.get('/metadata/:token/metadata', async (req, reply) => sendEquinix(req, reply, await byToken(tokenOf(req))));
  app.get('/metadata/:token/userdata', async (req, reply) => sendEquinixUserData(reply, await byToken(tokenOf(req))));

  // ---- the EC2 tree: /metadata/<token>/<version>/meta-data/… and …/user-data
  const byEc2Token = async (req: FastifyRequest): Promise<Found> => {
    const { version } = req.params as { version: string };
    if (!Ec2Versions.includes(version)) return { ok: false, code: 404, message: `no metadata version ${JSON.stringify(version.slice(0, 40))}; the versions are ${Ec2Versions.join(', ')}` };
    return byToken(tokenOf(req));
  };
  const ec2 = async (req: FastifyRequest, reply: FastifyReply, path: string[]): Promise<FastifyReply> => {
    const f = await byEc2Token(req);
    if (!f.ok) return refuseText(reply, f);
    const answer = ec2MetaData(await viewOf(f.device, req), path);
    if (answer === undefined) return refuseText(reply, { ok: false, code: 404, message: `meta-data/${path.join('/')} is not in this machine's metadata` });
    return reply.type('text/plain; charset=utf-8').send(answer);
  };
  app.get('/metadata/:token/:version/meta-data', async (req, reply) => ec2(req, reply, []));
  app.get('/metadata/:token/:version/meta-data/*', async (req, reply) => ec2(req, reply, ((req.params as { '*': string })['*'] ?? '').split('/')));
  app.get('/metadata/:token/:version/user-data', async (req, reply) => {
    const f = await byEc2Token(req);
    if (!f.ok) return refuseText(reply, f);
    const ud = await userDataOf(deps.client, f.device);
    // EC2 answers 404 for an instance without user data; cloud-init reads that as none.
    return ud ? sendUserData(reply, ud) : refuseText(reply, { ok: false, code: 404, message: 'this device has no user data' });
  });

  // ---- cloud-init NoCloud: the seed URL /metadata/nocloud/<token>/
  const nocloud = (file: string, render: (v: MachineView) => string): void => {
    app.get(`/metadata/nocloud/:token/${file}`, async (req, reply) => {
      const f = await byToken(tokenOf(req));
      if (!f.ok) return refuseText(reply, f);
      return reply.type('text/plain; charset=utf-8').send(render(await viewOf(f.device, req)));
    });
  };
  nocloud('meta-data', nocloudMetaData);
  nocloud('vendor-data', nocloudVendorData);
  nocloud('network-config', nocloudNetworkConfigYaml);
  app.get('/metadata/nocloud/:token/user-data', async (req, reply) => {
    const f = await byToken(tokenOf(req));
    if (!f.ok) return refuseText(reply, f);
    const ud = await userDataOf(deps.client, f.device);
    return ud ? sendUserData(reply, ud) : reply.type('text/plain; charset=utf-8').send('#cloud-config\n{}\n');
  });

  // ---- posts: phone home (completes provisioning) and user state (an Event on the Device)
  const phoneHome = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const f = await byToken(tokenOf(req));
    if (!f.ok) return refuseText(reply, f);
    const dev = f.device;
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
  };
  app.post('/metadata/nocloud/:token/phone-home', phoneHome);
  app.post('/metadata/:token/phone-home', phoneHome);

  app.post('/metadata/:token/events', { bodyLimit: MaxUserStateBodyBytes }, async (req, reply) => {
    const f = await byToken(tokenOf(req));
    if (!f.ok) return refuseJson(reply, f);
    const parsed = parseUserState(req.body as Buffer | undefined);
    if (!parsed.ok) return refuseJson(reply, { ok: false, code: parsed.code, message: parsed.message });
    const allowed = limiter.take(f.device.metadata.uid);
    if (!allowed.ok) {
      return refuseJson(reply.header('Retry-After', String(allowed.retryAfterSeconds)), { ok: false, code: 429, message: `too many user state posts from this device; retry in ${allowed.retryAfterSeconds} s` });
    }
    const ev = userStateEvent(parsed.report);
    await recorder.record(f.device, ev.type, ev.reason, ev.message);
    return reply.code(202).type('application/json').send({ state: parsed.report.state });
  });
}
