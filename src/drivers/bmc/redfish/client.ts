// The Redfish BMC driver: the DMTF Redfish subset that Ironic (sushy), metal3 and Tinkerbell rufio use to run
// bare metal — GET a ComputerSystem, POST its ComputerSystem.Reset action, PATCH Boot.BootSourceOverride*.
// HTTP Basic auth on every request (no SessionService). Every failure becomes a BmcError saying which BMC,
// which step and what went wrong, so a reconciler can put it in a condition message as it is.

import http from 'node:http';
import https from 'node:https';
import {
  BmcError,
  type BmcClient,
  type BmcCredentials,
  type BmcDriver,
  type BmcEndpoint,
  type BmcErrorKind,
  type BootDevice,
  type PowerAction,
  type PowerState,
  type SystemInfo,
} from '../types.js';

export interface RedfishDriverOptions {
  /** Per request, from connecting to the last byte of the answer. Default 5000. */
  timeoutMs?: number;
  /**
   * Send requests with this fetch instead of node:http(s) (e.g. to go through a proxy). TLS is then up to it:
   * `insecureSkipVerify` only takes effect with the built-in transport.
   */
  fetch?: typeof fetch;
}

const SYSTEMS_PATH = '/redfish/v1/Systems';
const DEFAULT_TIMEOUT_MS = 5000;
const MAX_ANSWER_BYTES = 4 << 20;

const RESET_TYPES = {
  on: 'On',
  off: 'ForceOff',
  'soft-off': 'GracefulShutdown',
  reset: 'ForceRestart',
  cycle: 'PowerCycle',
} as const satisfies Record<PowerAction, string>;

const BOOT_TARGETS = {
  pxe: 'Pxe',
  disk: 'Hdd',
  bios: 'BiosSetup',
  cdrom: 'Cd',
} as const satisfies Record<BootDevice, string>;

const DEVICE_OF_TARGET = new Map<string, BootDevice>(
  Object.entries(BOOT_TARGETS).map(([device, target]) => [target, device as BootDevice]),
);

export class RedfishDriver implements BmcDriver {
  private readonly timeoutMs: number;
  private readonly transport: Transport;

  constructor(opts: RedfishDriverOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.transport = opts.fetch ? fetchTransport(opts.fetch) : nodeTransport();
  }

  connect(endpoint: BmcEndpoint, credentials: BmcCredentials): BmcClient {
    let url: URL;
    try {
      url = new URL(endpoint.address);
    } catch {
      throw new BmcError('rejected', `redfish: BMC address "${endpoint.address}" is not a URL; expected e.g. https://10.0.0.5`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new BmcError(
        'rejected',
        `redfish: BMC address "${endpoint.address}" has scheme ${url.protocol.slice(0, -1)}; expected http or https`,
      );
    }
    // metal3-style addresses carry the system in the path (https://10.0.0.5/redfish/v1/Systems/1).
    const pathInAddress = url.pathname.replace(/\/+$/, '');
    const systemId = endpoint.systemId ?? (pathInAddress === '' ? undefined : pathInAddress);
    return new RedfishClient({
      origin: url.origin,
      systemPath: systemId === undefined ? undefined : systemPathOf(systemId),
      authorization: 'Basic ' + Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64'),
      insecureSkipVerify: endpoint.insecureSkipVerify ?? false,
      timeoutMs: this.timeoutMs,
      transport: this.transport,
    });
  }
}

/** A bare id (`m-001`) is a member of /redfish/v1/Systems; anything starting with `/` is already a path. */
function systemPathOf(systemId: string): string {
  const trimmed = systemId.replace(/\/+$/, '');
  return trimmed.startsWith('/') ? trimmed : `${SYSTEMS_PATH}/${encodeURIComponent(trimmed)}`;
}

interface Connection {
  origin: string;
  systemPath: string | undefined;
  authorization: string;
  insecureSkipVerify: boolean;
  timeoutMs: number;
  transport: Transport;
}

type JsonObject = Record<string, unknown>;

class RedfishClient implements BmcClient {
  /** Resolved on first use when the endpoint names no system. */
  private systemPath: string | undefined;

  constructor(private readonly conn: Connection) {
    this.systemPath = conn.systemPath;
  }

  async system(): Promise<SystemInfo> {
    const path = await this.resolveSystem();
    const sys = await this.getObject(path, 'GET system');
    const info: SystemInfo = {
      powerState: this.powerStateOf(sys, 'GET system'),
      bootOverride: bootOverrideOf(sys),
    };
    const manufacturer = stringAt(sys, 'Manufacturer');
    const model = stringAt(sys, 'Model');
    const serialNumber = stringAt(sys, 'SerialNumber');
    const uuid = stringAt(sys, 'UUID');
    const memoryGiB = numberAt(objectAt(sys, 'MemorySummary'), 'TotalSystemMemoryGiB');
    const processorCount = numberAt(objectAt(sys, 'ProcessorSummary'), 'Count');
    if (manufacturer !== undefined) info.manufacturer = manufacturer;
    if (model !== undefined) info.model = model;
    if (serialNumber !== undefined) info.serialNumber = serialNumber;
    if (uuid !== undefined) info.uuid = uuid;
    if (memoryGiB !== undefined) info.memoryGiB = memoryGiB;
    if (processorCount !== undefined) info.processorCount = processorCount;
    const macAddresses = await this.macAddresses(sys);
    if (macAddresses !== undefined) info.macAddresses = macAddresses;
    return info;
  }

  async powerState(): Promise<PowerState> {
    const path = await this.resolveSystem();
    return this.powerStateOf(await this.getObject(path, 'GET system'), 'GET system');
  }

  async setPower(action: PowerAction): Promise<void> {
    const resetType = RESET_TYPES[action];
    const path = await this.resolveSystem();
    // Read first: the action's target URL and allowed ResetTypes are advertised on the system, and some BMCs
    // answer 409 to On when on — skipping what is already true keeps reconcilers idempotent.
    const readStep = `GET system for ComputerSystem.Reset (${resetType})`;
    const sys = await this.getObject(path, readStep);
    const state = this.powerStateOf(sys, readStep);
    if (action === 'on' ? state === 'on' : (action === 'off' || action === 'soft-off') && state === 'off') return;

    const postStep = `POST ComputerSystem.Reset (${resetType})`;
    const reset = objectAt(objectAt(sys, 'Actions'), '#ComputerSystem.Reset');
    const allowed = stringsAt(reset, 'ResetType@Redfish.AllowableValues');
    if (allowed !== undefined && allowed.length > 0 && !allowed.includes(resetType)) {
      throw this.error('rejected', postStep, `the BMC does not offer ResetType ${resetType}; it offers ${allowed.join(', ')}`);
    }
    const target = stringAt(reset, 'target') ?? `${path}/Actions/ComputerSystem.Reset`;
    await this.send('POST', target, postStep, { ResetType: resetType });
  }

  async setBootDevice(device: BootDevice, opts: { once?: boolean } = {}): Promise<void> {
    const target = BOOT_TARGETS[device];
    const enabled = opts.once ? 'Once' : 'Continuous';
    const path = await this.resolveSystem();
    await this.send('PATCH', path, `PATCH Boot (${target}, ${enabled})`, {
      Boot: { BootSourceOverrideTarget: target, BootSourceOverrideEnabled: enabled },
    });
  }

  private async resolveSystem(): Promise<string> {
    if (this.systemPath !== undefined) return this.systemPath;
    const step = `GET ${SYSTEMS_PATH} (the endpoint names no systemId)`;
    const members = memberLinks(await this.getObject(SYSTEMS_PATH, step));
    if (members.length === 0) throw this.error('not-found', step, 'the BMC lists no systems');
    if (members.length > 1) {
      const shown = members.slice(0, 5).join(', ') + (members.length > 5 ? ', …' : '');
      throw this.error('rejected', step, `the BMC has ${members.length} systems (${shown}); set systemId to one of them`);
    }
    const only = members[0]!;
    this.systemPath = only;
    return only;
  }

  /** undefined when the BMC does not publish EthernetInterfaces (it is optional in Redfish). */
  private async macAddresses(sys: JsonObject): Promise<string[] | undefined> {
    const link = stringAt(objectAt(sys, 'EthernetInterfaces'), '@odata.id');
    if (link === undefined) return undefined;
    const collection = await this.getObject(link, 'GET EthernetInterfaces').catch(ifNotFound(undefined));
    if (collection === undefined) return undefined;
    const interfaces = await Promise.all(
      memberLinks(collection).map((member) =>
        this.getObject(member, `GET EthernetInterface ${member}`).catch(ifNotFound(undefined)),
      ),
    );
    const macs: string[] = [];
    for (const nic of interfaces) {
      const mac = normalizeMac(stringAt(nic, 'MACAddress') ?? stringAt(nic, 'PermanentMACAddress'));
      if (mac !== undefined && !macs.includes(mac)) macs.push(mac);
    }
    return macs;
  }

  private powerStateOf(sys: JsonObject, step: string): PowerState {
    // Report the state the machine is settling into: asking to power on a machine that is PoweringOn is moot.
    switch (sys['PowerState']) {
      case 'On':
      case 'PoweringOn':
      case 'Paused':
        return 'on';
      case 'Off':
      case 'PoweringOff':
        return 'off';
      default:
        throw this.error('protocol', step, `PowerState is ${JSON.stringify(sys['PowerState'])}; expected On, Off, PoweringOn or PoweringOff`);
    }
  }

  private async getObject(path: string, step: string): Promise<JsonObject> {
    const body = await this.send('GET', path, step);
    if (!isObject(body)) throw this.error('protocol', step, 'the answer is not a JSON object');
    return body;
  }

  /** One request; answers the parsed JSON body (undefined when empty) of a 2xx, throws BmcError otherwise. */
  private async send(method: Method, path: string, step: string, payload?: unknown): Promise<unknown> {
    const url = new URL(path, this.conn.origin);
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: this.conn.authorization,
      'odata-version': '4.0',
    };
    let body: string | undefined;
    if (payload !== undefined) {
      body = JSON.stringify(payload);
      headers['content-type'] = 'application/json';
    }
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, this.conn.timeoutMs);
    let answer: HttpAnswer;
    try {
      answer = await this.conn.transport({
        method,
        url,
        headers,
        body,
        signal: abort.signal,
        insecureSkipVerify: this.conn.insecureSkipVerify,
      });
    } catch (err) {
      if (timedOut) throw this.error('timeout', step, `no answer within ${this.conn.timeoutMs} ms`, { cause: err });
      const { kind, detail, transient } = describeTransportFailure(err);
      throw this.error(kind, step, detail, { cause: err, transient });
    } finally {
      clearTimeout(timer);
    }
    return this.readAnswer(answer, method, step);
  }

  private readAnswer(answer: HttpAnswer, method: Method, step: string): unknown {
    const { status } = answer;
    if (status >= 200 && status < 300) {
      if (answer.body.trim() === '') return undefined;
      try {
        return JSON.parse(answer.body) as unknown;
      } catch {
        // A PATCH or POST that worked needs no body; only a read has to be JSON.
        if (method === 'GET') throw this.error('protocol', step, `HTTP ${status} with a body that is not JSON`, { status });
        return undefined;
      }
    }
    const said = redfishMessage(answer.body);
    const detail = `HTTP ${status}${said === undefined ? '' : `: ${said}`}`;
    if (status >= 300 && status < 400) {
      const location = answer.header('location');
      throw this.error('protocol', step, `${detail}: redirected${location ? ` to ${location}` : ''}; point the address there`, { status });
    }
    if (status === 401 || status === 403) {
      const hint = `HTTP ${status} (check the BMC username and password)`;
      throw this.error('unauthorized', step, said === undefined ? hint : `${hint}: ${said}`, { status });
    }
    if (status === 404) throw this.error('not-found', step, detail, { status });
    // 501: the BMC does not implement this at all — retrying will not change that.
    if ((status >= 400 && status < 500) || status === 501) throw this.error('rejected', step, detail, { status });
    if (status >= 500) throw this.error('protocol', step, detail, { status, transient: true });
    throw this.error('protocol', step, `unexpected ${detail}`, { status });
  }

  private error(kind: BmcErrorKind, step: string, detail: string, opts: { status?: number; transient?: boolean; cause?: unknown } = {}): BmcError {
    return new BmcError(kind, `redfish ${this.conn.origin}${this.systemPath ?? ''}: ${step}: ${detail}`, opts);
  }
}

function ifNotFound<T>(value: T): (err: unknown) => T {
  return (err) => {
    if (err instanceof BmcError && err.kind === 'not-found') return value;
    throw err;
  };
}

function bootOverrideOf(sys: JsonObject): SystemInfo['bootOverride'] {
  const boot = objectAt(sys, 'Boot');
  const enabled = boot?.['BootSourceOverrideEnabled'];
  const target = boot?.['BootSourceOverrideTarget'];
  // A target this contract has no word for (Usb, UefiShell, …) reads as no override: a reconciler that wants
  // one of ours will then set it, which is the right next step.
  const device = typeof target === 'string' ? DEVICE_OF_TARGET.get(target) : undefined;
  if (device === undefined || (enabled !== 'Once' && enabled !== 'Continuous')) return { device: 'none', once: false };
  return { device, once: enabled === 'Once' };
}

function memberLinks(collection: JsonObject): string[] {
  const members = collection['Members'];
  if (!Array.isArray(members)) return [];
  return members
    .map((m: unknown) => stringAt(isObject(m) ? m : undefined, '@odata.id'))
    .filter((link): link is string => link !== undefined);
}

/** `0C-C4-7A-00-00-01` → `0c:c4:7a:00:00:01`; anything that is not a 48-bit MAC → undefined. */
function normalizeMac(raw: string | undefined): string | undefined {
  if (raw === undefined || !/^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/.test(raw)) return undefined;
  const mac = raw.toLowerCase().replaceAll('-', ':');
  return mac === '00:00:00:00:00:00' ? undefined : mac;
}

/** The human part of a Redfish error body (`error["@Message.ExtendedInfo"][0].Message`, else `error.message`). */
function redfishMessage(body: string): string | undefined {
  if (body.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    const text = body.trim().replace(/\s+/g, ' ');
    return text.length > 200 ? text.slice(0, 200) + '…' : text;
  }
  const error = objectAt(isObject(parsed) ? parsed : undefined, 'error');
  const info = error?.['@Message.ExtendedInfo'];
  const first = Array.isArray(info) && isObject(info[0]) ? info[0] : undefined;
  return stringAt(first, 'Message') ?? stringAt(error, 'message');
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function objectAt(o: JsonObject | undefined, key: string): JsonObject | undefined {
  const v = o?.[key];
  return isObject(v) ? v : undefined;
}

function stringAt(o: JsonObject | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function stringsAt(o: JsonObject | undefined, key: string): string[] | undefined {
  const v = o?.[key];
  return Array.isArray(v) ? v.filter((x: unknown): x is string => typeof x === 'string') : undefined;
}

function numberAt(o: JsonObject | undefined, key: string): number | undefined {
  const v = o?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

// ---- transport failures ------------------------------------------------------------------------------------

const CONNECTION_FAILURES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  EHOSTDOWN: 'host down',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  ENOTFOUND: 'host name does not resolve',
  EAI_AGAIN: 'host name lookup failed',
  UND_ERR_SOCKET: 'connection closed by the BMC',
  UND_ERR_CLOSED: 'connection closed',
};

const TLS_TRUST_FAILURES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Classifies a failure below HTTP by the error codes along its cause chain (node:http and undici differ). */
function describeTransportFailure(err: unknown): { kind: BmcErrorKind; detail: string; transient: boolean } {
  const codes: string[] = [];
  let message = String(err);
  for (let e: unknown = err, depth = 0; isErrorLike(e) && depth < 5; e = e.cause, depth++) {
    if (typeof e.code === 'string') codes.push(e.code);
    if (typeof e.message === 'string' && e.message !== '') message = e.message;
  }
  for (const code of codes) {
    const what = CONNECTION_FAILURES[code];
    if (what !== undefined) {
      // node:http says "socket hang up" when the BMC closed the connection before answering.
      const detail = message === 'socket hang up' ? `${what} (socket hang up)` : what;
      return { kind: 'unreachable', detail, transient: true };
    }
    if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return { kind: 'timeout', detail: 'connect timed out', transient: true };
    if (TLS_TRUST_FAILURES.has(code)) {
      return {
        kind: 'protocol',
        detail: `TLS certificate not trusted (${code}); set insecureSkipVerify for a BMC with a self-signed certificate`,
        transient: false,
      };
    }
    if (code === 'EPROTO' || code.startsWith('ERR_SSL_') || code.startsWith('HPE_')) {
      return { kind: 'protocol', detail: `not speaking the expected protocol (${code}); check http vs https`, transient: false };
    }
  }
  // Unknown failures below HTTP are most likely the network: worth a retry with backoff.
  return { kind: 'unreachable', detail: codes.length > 0 ? `${message} (${codes[codes.length - 1]})` : message, transient: true };
}

function isErrorLike(e: unknown): e is { code?: unknown; message?: unknown; cause?: unknown } {
  return typeof e === 'object' && e !== null;
}

// ---- transports --------------------------------------------------------------------------------------------

type Method = 'GET' | 'POST' | 'PATCH';

interface HttpExchange {
  method: Method;
  url: URL;
  headers: Record<string, string>;
  body: string | undefined;
  signal: AbortSignal;
  insecureSkipVerify: boolean;
}

interface HttpAnswer {
  status: number;
  header(name: string): string | undefined;
  body: string;
}

type Transport = (exchange: HttpExchange) => Promise<HttpAnswer>;

function fetchTransport(fetchFn: typeof fetch): Transport {
  return async (x) => {
    const res = await fetchFn(x.url, { method: x.method, headers: x.headers, body: x.body, signal: x.signal, redirect: 'manual' });
    const body = await res.text();
    return { status: res.status, header: (name) => res.headers.get(name) ?? undefined, body };
  };
}

function nodeTransport(): Transport {
  // Keep-alive, so a reconciler polling a BMC does not pay a TCP (and TLS) handshake per request. The agent
  // timeout lets idle sockets go before a server's usual 5 s keep-alive, and Node shortens it further to a
  // `Keep-Alive: timeout=` hint.
  const agentOptions = { keepAlive: true, timeout: 4000 };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);
  let insecureAgent: https.Agent | undefined;
  const agentFor = (x: HttpExchange): http.Agent => {
    if (x.url.protocol === 'http:') return httpAgent;
    if (!x.insecureSkipVerify) return httpsAgent;
    return (insecureAgent ??= new https.Agent({ ...agentOptions, rejectUnauthorized: false }));
  };
  const staleSocketFailures = new WeakSet<object>();

  const once = (x: HttpExchange): Promise<HttpAnswer> =>
    new Promise((resolve, reject) => {
      const send = x.url.protocol === 'https:' ? https.request : http.request;
      const req = send(x.url, { method: x.method, headers: x.headers, agent: agentFor(x), signal: x.signal }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const header = (name: string): string | undefined => {
            const v = res.headers[name.toLowerCase()];
            return Array.isArray(v) ? v.join(', ') : v;
          };
          resolve({ status: res.statusCode ?? 0, header, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.on('error', (err: Error & { code?: string }) => {
        if (req.reusedSocket && err.code === 'ECONNRESET') staleSocketFailures.add(err);
        reject(err);
      });
      req.end(x.body);
    });

  return async (x) => {
    try {
      return await once(x);
    } catch (err) {
      // A kept-alive socket the BMC closed while idle fails on reuse before the request reaches the BMC;
      // Node's docs advise one retry. Never for the Reset POST (not idempotent); our PATCHes set absolute values.
      if (isErrorLike(err) && staleSocketFailures.has(err) && x.method !== 'POST' && !x.signal.aborted) return once(x);
      throw err;
    }
  };
}
