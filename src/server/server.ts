// Assembles the one process: store, kinds, registry, the kube API, probes, metrics, TLS on the one port,
// and the core controllers behind a leader lease. `metalplane up` calls startServer().
import { hostname } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import pino from 'pino';
import type { Store } from '../store/types.js';
import { PostgresStore, isSharedStoreUrl, openStore } from '../store/index.js';
import { adoptSharedCa } from './shared-identity.js';
import { SharedAgentPresence } from './shared-agents.js';
import { SECRET_KEY_PREFIXES, encryptPlainValues, encryptingStore, isSecretKey, loadOrCreateKeyFile } from '../store/encryption.js';
import { KindRegistry, allKinds } from '../kinds/index.js';
import { catalogSeed } from '../kinds/catalog-seed.js';
import type { KubeObject } from '../kinds/types.js';
import { Registry } from '../apiserver/registry.js';
import { registerKubeApi, sendStatusError, MAX_BODY_BYTES } from '../apiserver/kube-api.js';
import { TokenAuthenticator } from '../apiserver/auth.js';
import { ApiError } from '../lib/errors.js';
import { toApiError } from '../apiserver/status.js';
import { systemClock } from '../lib/clock.js';
import { controllerMetrics, createMetrics, instrumentStore, observeCurrentState, type Metrics } from './metrics.js';
import { writeKubeconfig } from './kubeconfig.js';
import { ensureCertificates } from './tls/certs.js';
import { fastifyServerFactory } from './tls/listener.js';
import { isLoopbackAddress, plainHttpDecision } from './tls/peer-policy.js';
import { prepareDataDir } from './data-dir.js';
import { RequestDrain } from './drain.js';
import { lingerAfterResponse } from './linger.js';
import { installRequestGuard, pathOf, throttledRefusalLog, type BodyCredential } from './request-guard.js';
import { startCoreControllers } from '../controllers/index.js';
import { LeaderElector } from '../runtime/leader.js';
import { EventRecorder } from '../runtime/events.js';
import { VERSION } from '../version.js';
import { InformerFactory } from '../runtime/informer.js';
import { startProvisioningControllers } from '../controllers/provisioning.js';
import { kindsFrom } from '../controllers/provisioning-context.js';
import { createTiming } from '../controllers/timing.js';
import { bmcDrivers } from '../drivers/bmc/index.js';
import { registerAgentApi } from '../provisioning/agent-api.js';
import { MacIndex, registerBootService } from '../provisioning/boot.js';
import { resolveBootInterface, startBootNetwork, type BootNetworkOptions } from '../provisioning/boot-network.js';
import { BootRecords } from '../provisioning/boots.js';
import { registerMetadataService } from '../provisioning/metadata.js';
import { TokenSigner } from '../provisioning/tokens.js';
import { SimDatacenter } from '../sim/datacenter.js';
import { registerSimRoutes } from '../sim/http.js';
import { HttpSwitchDriver } from '../drivers/switch/http.js';
import type { SwitchDriver } from '../drivers/switch/types.js';
import { readFileSync } from 'node:fs';
import { collapseMetalPath, registerMetalApi } from '../metal-api/index.js';
import { metalRouteGroups } from '../metal-api/routes.js';
import type { SimSpeed } from '../sim/clock.js';
import { bearerAuthenticator, knownBearer } from '../apiserver/tenant-auth.js';
import { requireOperator } from '../apiserver/authz.js';
import { ConsoleSessions } from './console-session.js';
import { registerConsole } from './console.js';

export interface ServerOptions {
  dataDir: string;
  host: string;
  port: number;
  logLevel?: string;
  /** Extra subject alternative names for the serving certificate. */
  tlsSans?: string[];
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
  /** Serve every path over plain HTTP to every peer (logged as a warning). */
  insecureHttp?: boolean;
  /** Log to this destination (default stdout). */
  logDestination?: NodeJS.WritableStream;
  /** How often watches get bookmarks (ms). */
  bookmarkIntervalMs?: number;
  /** Start the simulated datacenter with this many machines at this speed (absent: no simulator). */
  sim?: { machines: number; speed: SimSpeed };
  /**
   * A simulated datacenter running as its own process (`metalplane sim`) at `url`: its switch API is the network
   * controller's switch driver and /sim/v1 is passed on to it. `tokenFile` holds the token it was given
   * (default: this server's admin token).
   */
  externalSim?: { url: string; tokenFile?: string };
  /**
   * How much faster than real hardware the machines are, for the provisioning controllers' timeouts (default:
   * the simulator's speed, `max` counting as 1000; 1 without a simulator).
   */
  timeScale?: number;
  /** Floor of every provisioning timeout, ms (default 15 000: timing.ts DefaultTimeoutFloorMs). */
  timeoutFloorMs?: number;
  /** What one peer may hold of the server (defaults: ServerLimitDefaults). */
  limits?: Partial<ServerLimits>;
  /**
   * The store URL (src/store/index.ts openStore): default `sqlite:<dataDir>/state.db`. A `postgres://` store is
   * shared: several replicas may run on it (one leader for the controllers, a shared CA).
   */
  store?: string;
  /** The at-rest encryption key file (default `<dataDir>/encryption.key`); replicas on one store need the same one. */
  encryptionKeyFile?: string;
  /** Serve DHCP/TFTP on a provisioning network; machines then reach us at that interface's address. */
  boot?: BootNetworkOptions;
  /**
   * Where machines reach us, when not at the listen or boot-interface address: a load balancer in front of the
   * replicas (any of which may answer a machine), a DNS name. The port defaults to the listen port.
   */
  machineAddress?: { host: string; port?: number };
  /** How long a PostgreSQL store that does not answer yet is waited for at start-up (default 60 s). */
  storeWaitMs?: number;
}

/**
 * What one client can hold of the server. Loopback peers (this host: the embedded simulator, the operator's
 * kubectl) are exempt by default, since they could as well signal the process; the caps are for the network,
 * where one machine or one client must not exhaust the server for the others.
 */
export interface ServerLimits {
  /** Open connections per peer address; more are closed as they arrive. */
  maxConnectionsPerPeer: number;
  /** Request body bytes one peer may have in flight; more get a 429. */
  maxBodyBytesPerPeer: number;
  /** Time to receive a whole request, head and body; a slower one gets a 408. Watches and long polls are responses. */
  requestTimeoutMs: number;
  /** Time for a request's head (and a new connection's first byte). */
  headersTimeoutMs: number;
  /** Whether loopback peers are exempt from the per-peer caps. */
  exemptLoopback: boolean;
}

export const ServerLimitDefaults: ServerLimits = {
  // A provisioning network peer is one machine (a few connections); an operator's NAT may carry many watches.
  maxConnectionsPerPeer: 512,
  // About twenty bodies of the largest size (3 MiB) at once.
  maxBodyBytesPerPeer: 64 * 1024 * 1024,
  // A 3 MiB body still arrives at about 256 kbit/s.
  requestTimeoutMs: 120_000,
  headersTimeoutMs: 60_000,
  exemptLoopback: true,
};

export interface RunningServer {
  app: FastifyInstance;
  registry: Registry;
  store: Store;
  metrics: Metrics;
  /** https://host:port */
  url: string;
  /** http://host:port (loopback clients, machines) */
  plainUrl: string;
  port: number;
  kubeconfigPath: string;
  adminTokenPath: string;
  caPath: string;
  /** The simulated datacenter, when started. */
  sim?: SimDatacenter;
  /** The console link with a one-time sign-in token (plain HTTP on loopback). */
  consoleUrl: string;
  adminToken: string;
  close(): Promise<void>;
}

const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease', 'metalplane-system'];

/** Connection failures a database that is starting, restarting or failing over gives (not a wrong password). */
const TRANSIENT_CONNECT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE', '57P03', '57P01']);

function isTransientConnectError(e: unknown): boolean {
  for (let cur = e as { code?: unknown; cause?: unknown } | undefined, i = 0; cur && i < 4; cur = cur.cause as typeof cur, i++) {
    if (typeof cur.code === 'string' && TRANSIENT_CONNECT.has(cur.code)) return true;
    if (cur instanceof Error && /connection terminated|timeout expired/i.test(cur.message)) return true;
  }
  return false;
}

/**
 * A replica started before its PostgreSQL is up (a reboot of both, a failover in progress) waits for it, with
 * backoff, for `waitMs`; a refusal that waiting does not mend (wrong password, no such database) fails at once.
 */
async function openSharedStoreWaiting(url: string, waitMs: number, log: pino.Logger): Promise<Store> {
  const deadline = Date.now() + waitMs;
  const where = (() => {
    try {
      const u = new URL(url);
      return `${u.hostname}${u.port ? `:${u.port}` : ''}`;
    } catch {
      return 'the store';
    }
  })();
  for (let attempt = 1, delay = 250; ; attempt++, delay = Math.min(delay * 2, 5_000)) {
    try {
      return await openStore(url);
    } catch (e) {
      if (!isTransientConnectError(e)) throw e;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`PostgreSQL at ${where} did not answer for ${Math.round(waitMs / 1000)} s (--store-wait): ${(e as Error).message}`);
      log.warn({ attempt, err: (e as Error).message, retryInMs: Math.min(delay, left) }, `waiting for PostgreSQL at ${where}`);
      await new Promise((r) => setTimeout(r, Math.min(delay, left)));
    }
  }
}

function urlHost(host: string): string {
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return h.includes(':') ? `[${h}]` : h;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const started = Date.now();
  const log = pino({ level: opts.logLevel ?? 'info', base: { component: 'metalplane' } }, (opts.logDestination as pino.DestinationStream) ?? pino.destination(1));
  // Refuses (throws DataDirError) a directory others can write or someone else owns.
  const dataDirCheck = prepareDataDir(opts.dataDir);
  if (dataDirCheck.warning) log.warn(dataDirCheck.warning);
  const limits: ServerLimits = { ...ServerLimitDefaults, ...opts.limits };
  const isExemptPeer = (address: string): boolean => limits.exemptLoopback && isLoopbackAddress(address);
  const logRefusal = throttledRefusalLog((fields, msg) => log.warn(fields, msg));
  // Certificates first: a bad --tls-cert-file must fail start-up before anything is written.
  // Machines on the boot interface reach us (and verify our certificate) at its address.
  const bootIface = opts.boot ? resolveBootInterface(opts.boot) : undefined;
  const sans = ['localhost', '127.0.0.1', '::1', hostname(), ...(opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? [opts.host] : []), ...(bootIface ? [bootIface.address] : []), ...(opts.machineAddress ? [opts.machineAddress.host] : []), ...(opts.tlsSans ?? [])];
  let tls = await ensureCertificates({ dataDir: opts.dataDir, sans, certFile: opts.tlsCertFile, keyFile: opts.tlsKeyFile, caFile: opts.tlsCaFile });
  const metrics = createMetrics();
  const storeUrl = opts.store ?? join(opts.dataDir, 'state.db');
  // Only PostgreSQL can be shared by several replicas (SQLite has one writer: a second process is refused).
  const sharedStore = isSharedStoreUrl(storeUrl);
  const rawStore = sharedStore ? await openSharedStoreWaiting(storeUrl, opts.storeWaitMs ?? 60_000, log) : await openStore(storeUrl);
  // Secrets (BMC passwords) and the token signing key are encrypted at rest with a key file next to the database.
  const encryptionKeys = loadOrCreateKeyFile(opts.encryptionKeyFile ?? join(opts.dataDir, 'encryption.key'));
  const encrypted = encryptingStore(rawStore, { keys: encryptionKeys, matches: isSecretKey });
  const migrated = await encryptPlainValues(rawStore, encrypted, SECRET_KEY_PREFIXES);
  if (migrated > 0) log.info({ values: migrated }, 'encrypted secrets stored in clear by an earlier version');
  const store = instrumentStore(encrypted, metrics);
  // Replicas of one store trust one CA; an operator's own certificate files are left as they are.
  if (sharedStore && opts.tlsCertFile === undefined && (await adoptSharedCa(store, opts.dataDir))) {
    tls = await ensureCertificates({ dataDir: opts.dataDir, sans, certFile: opts.tlsCertFile, keyFile: opts.tlsKeyFile, caFile: opts.tlsCaFile });
  }
  store.startCompaction({ keepRevisions: 10_000, intervalMs: 60_000 });

  const kinds = new KindRegistry(allKinds);
  const registry = new Registry({ store, kinds, clock: systemClock, bookmarkIntervalMs: opts.bookmarkIntervalMs });
  await registry.start();
  observeCurrentState(metrics, () => registry.currentStateSize());
  await seed(registry, log);

  const auth = new TokenAuthenticator(store);
  const adminTokenPath = join(opts.dataDir, 'admin-token');
  const adminToken = await auth.ensureAdminToken(adminTokenPath);

  if (opts.insecureHttp) log.warn('--insecure-http: every path is served over plain HTTP to every peer; bearer tokens may cross the network in clear text');

  let ready = false;
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    // Machine tokens travel in paths (/metadata/nocloud/<token>/): longer than Fastify's 100-character default.
    routerOptions: { maxParamLength: 2048 },
    // Older Terraform providers send `/metal/v1//projects`.
    rewriteUrl: (req) => collapseMetalPath(req.url ?? '/'),
    return503OnClosing: true,
    forceCloseConnections: true,
    serverFactory: fastifyServerFactory(
      { cert: tls.cert, key: tls.key },
      {
        requestTimeoutMs: limits.requestTimeoutMs,
        headersTimeoutMs: limits.headersTimeoutMs,
        maxConnectionsPerPeer: limits.maxConnectionsPerPeer,
        isExemptPeer,
        onConnectionRefused: (peer, open, limit) => logRefusal(peer, `already holds ${open} connections (at most ${limit})`),
      },
    ),
    // Bad percent-encoding in the URL is refused before routing; answer it as a Status like every other error.
    frameworkErrors: (err, _req, reply) => void sendStatusError(reply, err),
  });
  // Every handler runs as an in-flight request, so shutdown can answer long polls and wait for the rest.
  // On a shared store, agents may call any replica: liveness goes through the store (src/server/shared-agents.ts).
  const sharedAgents = sharedStore ? new SharedAgentPresence(store, { onError: (err) => log.warn({ err }, 'agent heartbeat not written') }) : undefined;
  const drain = new RequestDrain(sharedAgents ? { onTouch: sharedAgents.touch } : {});
  app.addHook('onRoute', drain.onRoute);
  // Bodies are decoded by each surface (JSON, YAML, patch types); the kube API needs the raw bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // Fastify answers a body it will not read (over bodyLimit, a bad Content-Length) and closes the connection:
  // gracefully, so the client still sending reads the answer instead of a reset.
  app.addHook('onError', (req, reply, _err, done) => {
    if (reply.getHeader('connection') === 'close') lingerAfterResponse(req.raw);
    done();
  });

  // Callback style, like the other per-request hooks: an async hook costs every request a promise and a
  // microtask turn. A refused request continues once its answer is out; Fastify then runs no further hook.
  app.addHook('onRequest', (req, reply, done) => {
    const decision = plainHttpDecision({
      encrypted: (req.raw.socket as { encrypted?: boolean }).encrypted === true,
      remoteAddress: req.raw.socket.remoteAddress,
      path: req.url,
      insecureHttp: opts.insecureHttp ?? false,
    });
    if (!decision.allow) {
      sendStatusError(reply, new ApiError(decision.status, decision.status === 403 ? 'Forbidden' : 'BadRequest', decision.message)).then(() => done(), done);
      return;
    }
    (req as FastifyRequest & { startedAt?: bigint }).startedAt = process.hrtime.bigint();
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    const info = req.kube;
    const t0 = (req as FastifyRequest & { startedAt?: bigint }).startedAt;
    if (info && t0 !== undefined) {
      metrics.requestDuration.observe({ verb: info.verb, resource: info.resource, code: String(reply.statusCode) }, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    done();
  });

  // The guard authenticates API requests before their bodies are read; handlers reuse the user it found.
  // Metal API keys are accepted as tenants (apiserver/authz.ts limits them to their projects).
  const bearer = bearerAuthenticator(auth, registry);
  const authenticate = async (req: FastifyRequest) => req.user ?? bearer(req.headers.authorization);
  // The console's session cookie stands in for the header of each surface (before the guard looks at headers).
  const consoleSessions = new ConsoleSessions({ store, registry, tokens: auth, authenticate, clock: systemClock });
  app.addHook('onRequest', consoleSessions.hook);
  const signer = await TokenSigner.load(store);
  installRequestGuard(app, {
    authenticate,
    known: (req) => req.user ?? knownBearer(auth, req.headers.authorization),
    isApiPath: (path) => API_SEGMENTS.has(secondSegment(path)),
    credentials: machineCredentials(signer),
    maxBodyBytesPerPeer: limits.maxBodyBytesPerPeer,
    bodyLimit: MAX_BODY_BYTES,
    isExemptPeer,
    onRefused: logRefusal,
  });
  app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok'));
  app.get('/livez', async (_req, reply) => reply.type('text/plain').send('ok'));
  app.get('/readyz', async (_req, reply) => {
    // A networked store can go away: not ready while it does not answer (the load balancer sends traffic elsewhere).
    const storeDown = rawStore instanceof PostgresStore ? await rawStore.unavailableReason() : undefined;
    if (ready && storeDown === undefined) return reply.type('text/plain').send('ok');
    return reply.code(503).type('text/plain').send(storeDown === undefined ? 'not ready' : `not ready: ${storeDown}`);
  });
  // Authenticated by the guard (a 401 Status with WWW-Authenticate without a valid token).
  app.get('/metrics', async (req, reply) => {
    requireOperator(await authenticate(req), 'GET /metrics');
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  let address = `${urlHost(opts.host)}:${opts.port}`;
  // Where machines reach us: the boot interface's address when there is one (the listen host may be 0.0.0.0).
  let machineAddress = address;

  // Provisioning: the boot service, the agent protocol and the metadata service machines talk to, over
  // informers that run on every replica (the controllers run only on the leader).
  const pkinds = kindsFrom(registry);
  const provInformers = new InformerFactory({ client: registry, clock: systemClock, logger: log, resyncIntervalMs: 10 * 60_000 });
  const hub = drain.hub;
  const boots = new BootRecords(store);
  const hardwareInformer = provInformers.informerFor(pkinds.hardware);
  const workflowInformer = provInformers.informerFor(pkinds.workflow);
  registerBootService(app, {
    client: registry,
    hardware: hardwareInformer,
    hardwareKind: pkinds.hardware,
    workflowKind: pkinds.workflow,
    deviceKind: pkinds.device,
    signer,
    boots,
    hub,
    logger: log,
    urls: () => ({ plain: `http://${machineAddress}`, tls: `https://${machineAddress}` }),
    caPem: tls.ca,
    assetsDir: join(opts.dataDir, 'boot'),
    imagesDir: join(opts.dataDir, 'images'),
  });
  registerAgentApi(app, { client: registry, hardwareKind: pkinds.hardware, workflowKind: pkinds.workflow, deviceKind: pkinds.device, hub, signer, boots, logger: log, plainUrl: () => `http://${machineAddress}` });
  registerMetadataService(app, {
    client: registry,
    deviceKind: pkinds.device,
    workflowKind: pkinds.workflow,
    sshKeyKind: registry.kind('metalplane.dev', 'SSHKey'),
    ipAddresses: provInformers.informerFor(pkinds.ipAddress),
    devices: provInformers.informerFor(pkinds.device),
    signer,
    boots,
    logger: log,
    plainUrl: () => `http://${machineAddress}`,
  });
  // A workflow with an agent action ready wakes that machine's waiting agent at once.
  workflowInformer.addHandler({
    onUpdate: (_old, wf) => hub.wake((wf.spec as { hardware: string }).hardware),
    onAdd: (wf) => hub.wake((wf.spec as { hardware: string }).hardware),
  });
  // The simulator's operator API (/sim/v1: faults, chaos; in-process, or passed on to a sim of its own process)
  // needs the admin token and answers like the rest of /sim/v1: `{ "errors": [...] }`, e.g. a 401 without one.
  const simOperatorOnly = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    try {
      requireOperator(await authenticate(req), 'the simulator API');
    } catch (e) {
      const err = toApiError(e);
      return reply.code(err.code).send({ errors: [err.message] });
    }
    return undefined;
  };
  // The simulated datacenter is hardware: it reaches us only over HTTP (PXE, agent, metadata) and its BMCs
  // only over Redfish.
  const sim = opts.sim
    ? new SimDatacenter({ machines: opts.sim.machines, speed: opts.sim.speed, serverUrl: () => `http://${address}`, client: registry, logger: log })
    : undefined;
  if (sim) {
    await app.register(async (scope) => {
      scope.addHook('onRequest', simOperatorOnly);
      registerSimRoutes(scope, sim);
    });
  }
  // A sim of its own process is reached like hardware too: its switches over their HTTP API, and its operator
  // API (the console's and `metalplane chaos`'s /sim/v1) passed on with the token it was given.
  let switches: SwitchDriver | undefined = sim?.fabric;
  let simSwitches: HttpSwitchDriver | undefined;
  if (opts.externalSim) {
    const simUrl = new URL(opts.externalSim.url);
    const simToken = opts.externalSim.tokenFile !== undefined ? readTokenFile(opts.externalSim.tokenFile) : adminToken;
    switches = simSwitches = new HttpSwitchDriver({ url: simUrl, token: simToken });
    await app.register(async (scope) => {
      scope.addHook('onRequest', simOperatorOnly);
      scope.all('/sim/v1/*', async (req, reply) => {
        const target = new URL(req.url, simUrl);
        const body = Buffer.isBuffer(req.body) && req.body.length > 0 ? req.body : undefined;
        let res: Response;
        try {
          res = await fetch(target, {
            method: req.method,
            headers: { authorization: `Bearer ${simToken}`, accept: 'application/json', ...(body && req.headers['content-type'] ? { 'content-type': req.headers['content-type'] } : {}) },
            ...(body ? { body } : {}),
            signal: AbortSignal.timeout(30_000),
          });
        } catch (e) {
          return reply.code(502).send({ errors: [`the simulated datacenter at ${simUrl.origin} (--sim-url) does not answer: ${e instanceof Error ? e.message : String(e)}`] });
        }
        const text = Buffer.from(await res.arrayBuffer());
        if (res.status === 401) return reply.code(502).send({ errors: [`the simulated datacenter at ${simUrl.origin} refused this server's token: --sim-token-file must hold the token \`metalplane sim\` was given`] });
        return reply.code(res.status).type(res.headers.get('content-type') ?? 'application/json').send(text);
      });
    });
  }
  // The Metal API: a translation over the same kinds, sharing the provisioning informers' caches.
  await registerMetalApi(app, { registry, informers: provInformers, tokens: auth, clock: systemClock, ...metalRouteGroups() });
  registerConsole(app, { registry, sessions: consoleSessions, authenticate, onWatch: (delta, resource) => metrics.watches.inc({ resource }, delta) });
  await registerKubeApi(app, {
    registry,
    authenticate,
    serverAddress: () => address,
    version: VERSION,
    onWatch: (delta, resource) => metrics.watches.inc({ resource }, delta),
  });

  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  address = `${urlHost(opts.host)}:${port}`;
  machineAddress = opts.machineAddress
    ? `${urlHost(opts.machineAddress.host)}:${opts.machineAddress.port ?? port}`
    : bootIface
      ? `${bootIface.address}:${port}`
      : address;
  const url = `https://${address}`;
  const plainUrl = `http://${address}`;
  const timeScale = opts.timeScale ?? (opts.sim ? (opts.sim.speed === 'max' ? 1000 : opts.sim.speed) : 1);

  const kubeconfigPath = join(opts.dataDir, 'kubeconfig');
  writeKubeconfig(kubeconfigPath, { server: url, caPem: tls.ca, token: adminToken });

  // Controllers run only while this replica holds the lease, so several replicas can share one store.
  let controllers: { stop(): Promise<void> | void } | undefined;
  const identity = `${hostname()}_${process.pid}`;
  const elector = new LeaderElector({
    client: registry,
    namespace: 'metalplane-system',
    leaseName: 'metalplane-controllers',
    // The SQLite store has one writer, so a lease held by someone else is a previous process of ours (kill -9).
    // On a shared store it may be a live replica: wait out its lease.
    soleCandidate: !sharedStore,
    identity,
    clock: systemClock,
    logger: log,
    onStartedLeading: () => {
      const cm = controllerMetrics(metrics);
      // Every controller write carries this term's lease (runtime/fencing.ts): once another replica took the
      // lease, none lands, even from a replica that was paused and does not know yet.
      const client = elector.fencedClient(registry);
      const recorder = new EventRecorder({ client, component: 'metalplane-controller-manager', instance: identity, clock: systemClock, logger: log });
      const core = startCoreControllers({ client, kinds: [...kinds.all()], clock: systemClock, logger: log, metrics: cm, queueMetrics: cm.queue, recorder });
      const provisioning = startProvisioningControllers({
        client,
        kinds: pkinds,
        informers: provInformers,
        bmc: bmcDrivers(),
        switches,
        agents: sharedAgents ?? hub,
        timing: createTiming(timeScale, opts.timeoutFloorMs),
        clock: systemClock,
        logger: log,
        recorder,
        metrics: cm,
        queueMetrics: cm.queue,
      });
      controllers = { stop: () => Promise.all([core.stop(), provisioning.stop()]).then(() => undefined) };
    },
    onStoppedLeading: () => {
      void controllers?.stop();
      controllers = undefined;
    },
  });
  sharedAgents?.attach(hub);
  await sharedAgents?.start();
  provInformers.start();
  await provInformers.waitForSync();
  await elector.start();
  await sim?.start();
  const bootNetwork = opts.boot && bootIface
    ? await startBootNetwork(opts.boot, bootIface, {
        httpBase: `http://${machineAddress}`,
        isEnrolled: (mac) => hardwareInformer.cache.byIndex(MacIndex, mac).length > 0,
        logger: log,
      })
    : undefined;
  ready = true;
  log.info({ url, ms: Date.now() - started }, 'metalplane ready');
  // The token is in the fragment: browsers never send it, so it is in no log or Referer.
  const consoleUrl = `${plainUrl}/ui/#login=${consoleSessions.issueLoginToken()}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      ready = false;
      // Long polls are answered now (204, Retry-After) instead of waking later against a closed store.
      drain.start();
      await bootNetwork?.close();
      await sim?.stop();
      await controllers?.stop();
      controllers = undefined;
      simSwitches?.close();
      provInformers.stop();
      sharedAgents?.stop();
      await elector.stop();
      registry.close();
      await app.close();
      // Handlers still working (their connections may be gone) finish before the store goes away.
      const unfinished = await drain.settled(5_000);
      if (unfinished > 0) log.warn({ requests: unfinished }, 'closing the store with requests still running');
      await store.close();
    })());

  return { app, registry, store, metrics, url, plainUrl, port, kubeconfigPath, adminTokenPath, caPath: tls.caPath, adminToken, sim, consoleUrl, close };
}

function readTokenFile(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new Error(`--sim-token-file ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (token === '') throw new Error(`--sim-token-file ${file} is empty; it must hold the token \`metalplane sim\` was given`);
  return token;
}

/** Paths of the kube API (and metrics): every request is authenticated before anything else is done. */
const API_SEGMENTS = new Set(['api', 'apis', 'openapi', 'metrics']);

/** `path.split('/')[1] ?? ''` without the array (asked on every request). */
function secondSegment(path: string): string {
  const a = path.indexOf('/');
  if (a < 0) return '';
  const b = path.indexOf('/', a + 1);
  return b < 0 ? path.slice(a + 1) : path.slice(a + 1, b);
}

/**
 * The credentials of the machine-facing surfaces that take bodies, checked before a body is read. The surfaces
 * check them fully again (the boot, expiry, the device); this only keeps a caller without one from making the
 * server buffer anything. The messages are those of the surfaces themselves.
 */
function machineCredentials(signer: TokenSigner): BodyCredential[] {
  const bearer = (req: FastifyRequest): string | undefined => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const route = (req: FastifyRequest): string => req.routeOptions.url ?? '';
  return [
    {
      name: 'agent token',
      matches: (req) => route(req).startsWith('/agent/'),
      present: (req) => {
        const token = bearer(req);
        const claims = token !== undefined ? signer.verify(token) : undefined;
        // An expired token is not worth a body either (the agent API refuses it anyway, with a 401).
        return claims?.kind === 'agent' && (claims.exp === undefined || claims.exp * 1000 > Date.now());
      },
      refuse: (req, reply) =>
        reply.code(401).send({
          errors: [bearer(req) === undefined ? 'an agent token is required: Authorization: Bearer <metalplane.token from the kernel command line>' : 'the agent token is not valid'],
        }),
    },
    {
      name: 'instance token in the path',
      // phone-home (both paths) and user state (`/metadata/:token/events`)
      matches: (req) => route(req).startsWith('/metadata/nocloud/:token/') || route(req).startsWith('/metadata/:token/'),
      present: (req) => signer.verify((req.params as { token?: string }).token ?? '')?.kind === 'instance',
      refuse: (_req, reply) => reply.code(403).type('text/plain').send('this metadata token is not valid\n'),
    },
    // The simulator's operator API authenticates in its own onRequest hook, which also runs before the body.
    { name: 'sim operator token', matches: (req) => route(req).startsWith('/sim/') },
    // Console sign-in takes a small body (bodyLimit 8 KiB) from a caller who has no token yet: that is its purpose.
    { name: 'console sign-in', matches: (req) => pathOf(req.url) === '/ui/session' },
    // The Metal API authenticates X-Auth-Token in its own onRequest hook, before the body too.
    { name: 'metal api key', matches: (req) => pathOf(req.url).startsWith('/metal/') },
  ];
}

/** First start: system namespaces and the catalog. Later starts leave what users changed alone. */
async function seed(registry: Registry, log: pino.Logger): Promise<void> {
  const marker = '/metalplane/seeded';
  if (await registry.store.get(marker)) return;
  const objects: KubeObject[] = [
    ...SYSTEM_NAMESPACES.map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
    ...catalogSeed(),
  ];
  for (const obj of objects) {
    const kind = registry.kinds.byApiVersionKind(obj.apiVersion, obj.kind);
    if (!kind) throw new Error(`seed: ${obj.apiVersion} ${obj.kind} is not a served kind`);
    if (await registry.get(kind, obj.metadata.namespace, obj.metadata.name!)) continue;
    await registry.create(kind, obj, { fieldManager: 'metalplane-seed', fieldValidation: 'Strict' });
  }
  await registry.store.create(marker, JSON.stringify({ at: new Date().toISOString() }));
  log.info({ objects: objects.length }, 'seeded system namespaces and the catalog');
}
