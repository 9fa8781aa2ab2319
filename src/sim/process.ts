// The simulated datacenter as its own process (`metalplane sim`), so that machines outlive a control-plane
// replica as real hardware does. One HTTP port (loopback by default) serves what a rack's management network
// would: the machines' BMCs (Redfish, `/redfish/v1/...`, each behind its own Basic credentials), the switch
// fabric's API for the network controller (`/switch/v1/...`, drivers/switch/http.ts) and the operator API
// (`/sim/v1/...`: faults, chaos, consoles); the last two need the bearer token the sim was given. Machines
// are enrolled through the server's kube API (kube-client.ts), idempotently: a restarted sim finds its Secrets
// and Hardware and keeps their BMC passwords; the Hardware's BMC address is this port, stable across restarts.
import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { SwitchError, type BgpNeighborConfig, type MachineNetworkConfig, type SwitchPortConfig } from '../drivers/switch/types.js';
import { SWITCH_API_PREFIX } from '../drivers/switch/http.js';
import { childLogger, silentLogger, type Logger } from '../runtime/logger.js';
import type { SimSpeed } from './clock.js';
import { SimDatacenter, type EnrollmentSummary } from './datacenter.js';
import { registerSimRoutes } from './http.js';
import type { SimApiClient } from './kube-client.js';

export interface SimProcessOptions {
  machines: number;
  speed: SimSpeed;
  /** Enrolls the machines (the server's kube API). */
  client: SimApiClient;
  /** The plain-HTTP URL of metalplane that machines netboot from and their agents call (PXE, agent, metadata). */
  machineServerUrl: string;
  /** The bearer token the operator and switch APIs accept. */
  token: string;
  /** Listen address; default 127.0.0.1, port 0 (any free one). */
  host?: string;
  port?: number;
  /** The URL the control plane reaches this port at (the Hardware's BMC address); default http://<listen address>. */
  advertiseUrl?: string;
  logger?: Logger;
}

export interface RunningSimProcess {
  /** http://host:port: the BMC address of every machine, and the operator and switch APIs. */
  url: string;
  sim: SimDatacenter;
  enrollment: EnrollmentSummary;
  close(): Promise<void>;
}

export async function startSimProcess(opts: SimProcessOptions): Promise<RunningSimProcess> {
  const logger = childLogger(opts.logger ?? silentLogger, { component: 'sim' });
  const host = opts.host ?? '127.0.0.1';
  let url = '';
  const sim = new SimDatacenter({ machines: opts.machines, speed: opts.speed, serverUrl: opts.machineServerUrl, client: opts.client, logger: opts.logger, bmcUrl: () => url });
  const app = Fastify({
    logger: false,
    forceCloseConnections: true,
    // The BMCs are the Redfish emulator's (it keeps per-system credentials and faults); the rest is Fastify's.
    serverFactory: (handler) => http.createServer({ noDelay: true }, (req, res) => (isRedfishPath(req.url) ? sim.redfishHandler(req, res) : handler(req, res))),
  });
  registerSimProcessRoutes(app, sim, opts.token);
  try {
    await app.listen({ host, port: opts.port ?? 0 });
  } catch (err) {
    throw new Error(`cannot listen on ${hostPort(host, opts.port ?? 0)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  url = opts.advertiseUrl?.replace(/\/+$/, '') ?? `http://${hostPort(connectHost(host), (app.server.address() as AddressInfo).port)}`;
  let enrollment: EnrollmentSummary;
  try {
    enrollment = await sim.start();
  } catch (err) {
    await sim.stop();
    await app.close();
    throw err;
  }
  logger.info({ url, machines: opts.machines, speed: opts.speed, server: opts.machineServerUrl }, 'sim: serving BMCs, the switch API and the operator API');
  let closing: Promise<void> | undefined;
  return {
    url,
    sim,
    enrollment,
    close: () =>
      (closing ??= (async () => {
        await sim.stop();
        await app.close();
      })()),
  };
}

/** /sim/v1 (operator) and /switch/v1 (the network controller's switch driver), both behind the bearer token. */
export function registerSimProcessRoutes(app: FastifyInstance, sim: SimDatacenter, token: string): void {
  app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok'));
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      if (!bearerMatches(req.headers.authorization, token)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="metalplane-sim"')
          .send({ errors: [req.headers.authorization ? 'the bearer token is not the one this simulator was given (metalplane sim --token-file)' : 'a bearer token is required: Authorization: Bearer <the token of metalplane sim --token-file>'] });
      }
    });
    registerSimRoutes(scope, sim);
    scope.route({
      method: 'PUT',
      url: `${SWITCH_API_PREFIX}:machine`,
      handler: async (req) => {
        const machine = (req.params as { machine: string }).machine;
        // Ports are found as the in-process fabric finds them (recorded name, else the MAC): a NIC it has no
        // port for is a 404 there too.
        const ports = await sim.fabric.configureMachine(machineNetworkConfigOf(machine, req.body));
        return { ports };
      },
      errorHandler: (err, _req, reply) => sendSwitchError(reply, err),
    });
    scope.route({
      method: ['GET', 'POST', 'PATCH', 'DELETE'],
      url: `${SWITCH_API_PREFIX}*`,
      handler: async (req: FastifyRequest, reply: FastifyReply) => reply.code(405).header('allow', 'PUT').send({ errors: [`${req.method} is not served here: PUT ${SWITCH_API_PREFIX}{machine} with {"ports": [...], "bgp": [...]}`] }),
    });
  });
}

function isRedfishPath(url: string | undefined): boolean {
  return url === '/redfish' || (url?.startsWith('/redfish/') ?? false) || (url?.startsWith('/redfish?') ?? false);
}

/** Constant-time: the token is compared as digests, so neither its length nor its bytes leak through timing. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!m) return false;
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(m[1]!), digest(token));
}

class SwitchApiError extends Error {
  constructor(
    readonly status: 400 | 404,
    message: string,
  ) {
    super(message);
  }
}

function sendSwitchError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof SwitchApiError) return reply.code(err.status).send({ errors: [err.message] });
  if (err instanceof SwitchError) return reply.code(err.kind === 'not-found' ? 404 : err.kind === 'rejected' ? 422 : 503).send({ errors: [err.message] });
  const status = (err as { statusCode?: unknown }).statusCode;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof status === 'number' && status >= 400 && status < 500) return reply.code(status).send({ errors: [message] });
  return reply.code(500).send({ errors: [`internal error: ${message}`] });
}

/** The body of a switch API PUT, checked field by field: a bad one is a 400 saying what was expected. */
export function machineNetworkConfigOf(machine: string, body: unknown): MachineNetworkConfig {
  const obj = object(body, 'the request body');
  const known = ['ports', 'bgp'];
  for (const k of Object.keys(obj)) if (!known.includes(k)) throw bad(`unknown field "${k}"; known fields: ${known.join(', ')}`);
  if (!Array.isArray(obj['ports'])) throw bad('ports must be a list of {nic, mac, switchPort?, mode, lag?, vlans, native?}');
  if (obj['bgp'] !== undefined && !Array.isArray(obj['bgp'])) throw bad('bgp must be a list of {family, address, remoteAs, md5?, defaultRoute}');
  const ports = obj['ports'].map((p: unknown, i: number): SwitchPortConfig => {
    const at = `ports[${i}]`;
    const o = object(p, at);
    const mode = o['mode'];
    if (mode !== 'layer3' && mode !== 'layer2') throw bad(`${at}.mode must be "layer3" or "layer2", got ${JSON.stringify(mode)}`);
    if (!Array.isArray(o['vlans'])) throw bad(`${at}.vlans must be a list of {vid, network}`);
    const vlans = o['vlans'].map((v: unknown, j: number) => {
      const vo = object(v, `${at}.vlans[${j}]`);
      return { vid: int(vo['vid'], `${at}.vlans[${j}].vid`), network: str(vo['network'], `${at}.vlans[${j}].network`) };
    });
    return {
      nic: str(o['nic'], `${at}.nic`),
      mac: str(o['mac'], `${at}.mac`),
      ...(o['switchPort'] !== undefined ? { switchPort: str(o['switchPort'], `${at}.switchPort`) } : {}),
      mode,
      ...(o['lag'] !== undefined ? { lag: str(o['lag'], `${at}.lag`) } : {}),
      vlans,
      ...(o['native'] !== undefined ? { native: int(o['native'], `${at}.native`) } : {}),
    };
  });
  const bgp = ((obj['bgp'] as unknown[] | undefined) ?? []).map((b: unknown, i: number): BgpNeighborConfig => {
    const at = `bgp[${i}]`;
    const o = object(b, at);
    const family = o['family'];
    if (family !== 4 && family !== 6) throw bad(`${at}.family must be 4 or 6, got ${JSON.stringify(family)}`);
    if (typeof o['defaultRoute'] !== 'boolean') throw bad(`${at}.defaultRoute must be true or false`);
    return {
      family,
      address: str(o['address'], `${at}.address`),
      remoteAs: int(o['remoteAs'], `${at}.remoteAs`),
      ...(o['md5'] !== undefined ? { md5: str(o['md5'], `${at}.md5`) } : {}),
      defaultRoute: o['defaultRoute'],
    };
  });
  return { machine, ports, bgp };
}

function bad(message: string): SwitchApiError {
  return new SwitchApiError(400, message);
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw bad(`${what} must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(`${what} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Where clients connect for a listen host: a wildcard listen is reached on loopback here. */
function connectHost(host: string): string {
  return host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
