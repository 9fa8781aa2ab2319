// A Redfish BMC emulator for the simulated datacenter, in the manner of sushy-tools' emulator: one HTTP server
// answering for many machines at /redfish/v1/Systems/{id}, each behind its own Basic credentials, backed by the
// simulated machines through EmulatedSystem. It serves the DMTF Redfish subset that Ironic (sushy), metal3 and
// Tinkerbell rufio use. It is written from the Redfish schema, independently of our driver, so that the
// driver's tests against it test something.
//
// Not served: SessionService (clients use Basic auth — sushy falls back to it by itself, rufio needs
// `providerOptions.redfish.useBasicAuth`), Managers, Chassis, $expand/$select (ignored), ETag/If-Match.

import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock, type Timer } from '../lib/clock.js';

export const RESET_TYPES = ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'GracefulRestart', 'PowerCycle', 'Nmi'] as const;
export type ResetType = (typeof RESET_TYPES)[number];
export const BOOT_TARGETS = ['None', 'Pxe', 'Hdd', 'BiosSetup', 'Cd'] as const;
export type BootTarget = (typeof BOOT_TARGETS)[number];
export const BOOT_ENABLED = ['Disabled', 'Once', 'Continuous'] as const;
export type BootEnabled = (typeof BOOT_ENABLED)[number];

export interface EmulatedSystemInfo {
  powerState: 'On' | 'Off';
  bootTarget: BootTarget;
  bootEnabled: BootEnabled;
  manufacturer: string;
  model: string;
  serialNumber: string;
  uuid: string;
  memoryGiB: number;
  processorCount: number;
  /** Served as given, so use Redfish's form: six colon- (or dash-) separated hex pairs. */
  macs: string[];
}

export type BmcFault = { kind: 'unreachable' } | { kind: 'slow'; ms: number };

/** What a simulated machine offers its BMC. */
export interface EmulatedSystem {
  /** e.g. 'm-001', served at /redfish/v1/Systems/m-001 */
  readonly id: string;
  readonly username: string;
  readonly password: string;
  /** Called on every GET, and before a PATCH (to merge a partial Boot). */
  info(): EmulatedSystemInfo;
  /** May throw an Error whose message becomes a 400 Redfish error. */
  reset(type: ResetType): void;
  /** Called with both values, the unpatched one taken from info(). May throw like reset. */
  setBoot(target: BootTarget, enabled: BootEnabled): void;
  /**
   * Checked once per request for this system, before anything else. 'unreachable' destroys the socket without
   * answering (the client sees a connection reset); 'slow' answers after `ms` on the emulator's clock — and
   * still carries the request out then, even if the client has given up, as a slow real BMC would.
   */
  bmcFault?(): BmcFault | undefined;
}

/** Where the emulator finds systems: a `Map<string, EmulatedSystem>` will do, and may change while serving. */
export interface EmulatedSystems {
  /** Called on every request for /redfish/v1/Systems/{id}/…; should be O(1). */
  get(id: string): EmulatedSystem | undefined;
  /** Only for the Systems collection. */
  values(): Iterable<EmulatedSystem>;
}

export interface RedfishEmulatorOptions {
  systems: EmulatedSystems;
  /** Times the 'slow' fault; default the system clock. */
  clock?: Clock;
  /** Serve https with this certificate, as real BMCs do (usually self-signed); default plain http. */
  tls?: { cert: string; key: string };
}

const ROOT = '/redfish/v1';
const SYSTEMS = `${ROOT}/Systems`;
const MAX_BODY_BYTES = 64 * 1024;
const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'odata-version': '4.0',
  'cache-control': 'no-cache',
};

type JsonObject = Record<string, unknown>;

/** An answer the handler decided on: status, optional Redfish JSON body, extra headers. */
interface Answer {
  status: number;
  body?: JsonObject;
  headers?: Record<string, string>;
}

export class RedfishEmulator {
  private readonly systems: EmulatedSystems;
  private readonly clock: Clock;
  private readonly server: http.Server | https.Server;
  private readonly scheme: 'http' | 'https';
  private readonly serviceUuid = randomUUID();
  private readonly sleeping = new Set<Timer>();
  private served = 0;
  /** Answers one request as the emulator does; for a server of the caller's that also serves other paths. */
  readonly handler: (req: http.IncomingMessage, res: http.ServerResponse) => void;

  constructor(opts: RedfishEmulatorOptions) {
    this.systems = opts.systems;
    this.clock = opts.clock ?? systemClock;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        if (res.headersSent) res.destroy();
        else write(res, req, internalError(err));
      });
    };
    this.handler = handler;
    this.scheme = opts.tls ? 'https' : 'http';
    this.server = opts.tls
      ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key, noDelay: true }, handler)
      : http.createServer({ noDelay: true }, handler);
  }

  /** Requests received, whatever became of them (faults and errors included). */
  get requests(): number {
    return this.served;
  }

  /** `port` 0 picks a free one. `url` is the base URL to give a BMC client (no path). */
  listen(port: number, host = '127.0.0.1'): Promise<{ url: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const bound = (this.server.address() as AddressInfo).port;
        resolve({ url: `${this.scheme}://${urlHost(host)}:${bound}`, port: bound });
      });
    });
  }

  /** Stops listening, drops open connections and requests still held by a 'slow' fault. */
  async close(): Promise<void> {
    for (const t of this.sleeping) this.clock.clearTimeout(t);
    this.sleeping.clear();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.served++;
    const path = pathSegments(req.url ?? '/');
    // /redfish/v1/Systems/{id}/… is the per-system part; everything else is shared.
    if (path === undefined || path[0] !== 'redfish' || (path.length > 1 && path[1] !== 'v1')) {
      return write(res, req, notFound(req.url ?? '/'));
    }
    if (path.length < 4 || path[2] !== 'Systems') {
      return write(res, req, this.serveShared(req, path));
    }

    const id = path[3]!;
    const system = this.systems.get(id);
    if (system === undefined) {
      return write(res, req, notFound(req.url ?? '/'));
    }
    const fault = system.bmcFault?.();
    if (fault?.kind === 'unreachable') {
      req.socket.destroy();
      return;
    }
    const body = await readBody(req);
    if (body === undefined) return write(res, req, error(413, 'Base.1.8.GeneralError', `The request body exceeds ${MAX_BODY_BYTES} bytes.`));
    if (fault?.kind === 'slow') await this.sleep(fault.ms);
    if (!authorized(req, system)) return write(res, req, unauthorized());
    write(res, req, this.serveSystem(system, req.method ?? 'GET', path.slice(4), body));
  }

  /** /redfish, the service root and the Systems collection. */
  private serveShared(req: http.IncomingMessage, path: string[]): Answer {
    const known = path.length <= 2 || (path.length === 3 && path[2] === 'Systems');
    if (!known) return notFound(req.url ?? '/');
    if (!isRead(req.method)) return methodNotAllowed(req.method, 'GET, HEAD');
    if (path.length === 1) return { status: 200, body: { v1: `${ROOT}/` } };
    if (path.length === 2) {
      return {
        status: 200,
        body: {
          '@odata.id': `${ROOT}/`,
          '@odata.type': '#ServiceRoot.v1_5_0.ServiceRoot',
          Id: 'RootService',
          Name: 'Root Service',
          RedfishVersion: '1.8.0',
          UUID: this.serviceUuid,
          Product: 'metalplane simulated BMC',
          Systems: { '@odata.id': SYSTEMS },
        },
      };
    }
    // As if each machine had its own BMC: the collection lists the systems these credentials open (all of
    // them when the simulation gives every machine the same ones). It walks every system — it is only read
    // by clients that were not told a systemId.
    const credentials = basicCredentials(req);
    const members: JsonObject[] = [];
    if (credentials !== undefined) {
      for (const s of this.systems.values()) {
        if (s.username === credentials.username && s.password === credentials.password) {
          members.push({ '@odata.id': systemPath(s.id) });
        }
      }
    }
    if (members.length === 0) return unauthorized();
    return {
      status: 200,
      body: {
        '@odata.id': SYSTEMS,
        '@odata.type': '#ComputerSystemCollection.ComputerSystemCollection',
        Name: 'Computer System Collection',
        Members: members,
        'Members@odata.count': members.length,
      },
    };
  }

  /** Everything under /redfish/v1/Systems/{id}; `rest` is the path below it. */
  private serveSystem(system: EmulatedSystem, method: string, rest: string[], body: string): Answer {
    const base = systemPath(system.id);
    if (rest.length === 0) {
      if (isRead(method)) return { status: 200, body: systemResource(system.id, system.info()) };
      if (method === 'PATCH') return patchSystem(system, body);
      return methodNotAllowed(method, 'GET, HEAD, PATCH');
    }
    if (rest.length === 2 && rest[0] === 'Actions' && rest[1] === 'ComputerSystem.Reset') {
      if (method !== 'POST') return methodNotAllowed(method, 'POST');
      return resetSystem(system, body);
    }
    if (rest[0] === 'EthernetInterfaces' && rest.length <= 2) {
      if (!isRead(method)) return methodNotAllowed(method, 'GET, HEAD');
      const macs = system.info().macs;
      if (rest.length === 1) {
        return {
          status: 200,
          body: {
            '@odata.id': `${base}/EthernetInterfaces`,
            '@odata.type': '#EthernetInterfaceCollection.EthernetInterfaceCollection',
            Name: 'Ethernet Interface Collection',
            Members: macs.map((_, i) => ({ '@odata.id': `${base}/EthernetInterfaces/${i + 1}` })),
            'Members@odata.count': macs.length,
          },
        };
      }
      const n = Number(rest[1]);
      const mac = Number.isInteger(n) && n >= 1 ? macs[n - 1] : undefined;
      if (mac === undefined) return notFound(`${base}/EthernetInterfaces/${rest[1]}`);
      return {
        status: 200,
        body: {
          '@odata.id': `${base}/EthernetInterfaces/${n}`,
          '@odata.type': '#EthernetInterface.v1_6_0.EthernetInterface',
          Id: String(n),
          Name: `Ethernet Interface ${n}`,
          MACAddress: mac,
          PermanentMACAddress: mac,
          Status: { State: 'Enabled', Health: 'OK' },
        },
      };
    }
    return notFound(`${base}/${rest.join('/')}`);
  }

  private sleep(ms: number): Promise<void> {
    // Never settles if close() comes first: the connection is gone by then and the request is dropped.
    return new Promise((resolve) => {
      const t = this.clock.setTimeout(() => {
        this.sleeping.delete(t);
        resolve();
      }, ms);
      this.sleeping.add(t);
    });
  }
}

function systemResource(id: string, info: EmulatedSystemInfo): JsonObject {
  const base = systemPath(id);
  return {
    '@odata.id': base,
    '@odata.type': '#ComputerSystem.v1_13_0.ComputerSystem',
    Id: id,
    Name: id,
    SystemType: 'Physical',
    Manufacturer: info.manufacturer,
    Model: info.model,
    SerialNumber: info.serialNumber,
    UUID: info.uuid,
    PowerState: info.powerState,
    Status: { State: 'Enabled', Health: 'OK' },
    Boot: {
      BootSourceOverrideTarget: info.bootTarget,
      BootSourceOverrideEnabled: info.bootEnabled,
      // The machines are UEFI; a PATCH of the mode is accepted and has no effect.
      BootSourceOverrideMode: 'UEFI',
      'BootSourceOverrideTarget@Redfish.AllowableValues': [...BOOT_TARGETS],
    },
    MemorySummary: { TotalSystemMemoryGiB: info.memoryGiB, Status: { State: 'Enabled', Health: 'OK' } },
    ProcessorSummary: { Count: info.processorCount, Status: { State: 'Enabled', Health: 'OK' } },
    EthernetInterfaces: { '@odata.id': `${base}/EthernetInterfaces` },
    Actions: {
      '#ComputerSystem.Reset': {
        target: `${base}/Actions/ComputerSystem.Reset`,
        'ResetType@Redfish.AllowableValues': [...RESET_TYPES],
      },
    },
  };
}

const BOOT_PROPERTIES = ['BootSourceOverrideTarget', 'BootSourceOverrideEnabled', 'BootSourceOverrideMode'];

function patchSystem(system: EmulatedSystem, raw: string): Answer {
  const body = parseObject(raw);
  if (typeof body === 'string') return body === '' ? malformed('The request body is empty.') : malformed(body);
  for (const key of Object.keys(body)) {
    if (key !== 'Boot') {
      return error(400, 'Base.1.8.PropertyNotWritable', `The property ${key} is a read only property and cannot be assigned a value; only Boot can be patched.`);
    }
  }
  const boot = body['Boot'];
  if (!isObject(boot)) return error(400, 'Base.1.8.PropertyValueTypeError', `The value ${JSON.stringify(boot)} for the property Boot is of a different type than the property can accept.`);
  for (const key of Object.keys(boot)) {
    if (!BOOT_PROPERTIES.includes(key)) return error(400, 'Base.1.8.PropertyUnknown', `The property Boot/${key} is not in the list of valid properties for the resource.`);
  }
  const target = boot['BootSourceOverrideTarget'];
  const enabled = boot['BootSourceOverrideEnabled'];
  const mode = boot['BootSourceOverrideMode'];
  if (target !== undefined && !includes(BOOT_TARGETS, target)) return notInList(target, 'Boot/BootSourceOverrideTarget', BOOT_TARGETS);
  if (enabled !== undefined && !includes(BOOT_ENABLED, enabled)) return notInList(enabled, 'Boot/BootSourceOverrideEnabled', BOOT_ENABLED);
  if (mode !== undefined && mode !== 'UEFI' && mode !== 'Legacy') return notInList(mode, 'Boot/BootSourceOverrideMode', ['UEFI', 'Legacy']);
  if (target !== undefined || enabled !== undefined) {
    const current = system.info();
    try {
      system.setBoot(target ?? current.bootTarget, enabled ?? current.bootEnabled);
    } catch (err) {
      return error(400, 'Base.1.8.GeneralError', messageOf(err));
    }
  }
  return { status: 200, body: systemResource(system.id, system.info()) };
}

function resetSystem(system: EmulatedSystem, raw: string): Answer {
  const body = parseObject(raw);
  if (typeof body === 'string') return body === '' ? missingResetType() : malformed(body);
  const type = body['ResetType'];
  if (type === undefined) return missingResetType();
  if (!includes(RESET_TYPES, type)) {
    return error(
      400,
      'Base.1.8.ActionParameterValueNotInList',
      `The value ${JSON.stringify(type)} for the parameter ResetType in the action ComputerSystem.Reset is not in the list of acceptable values: ${RESET_TYPES.join(', ')}.`,
    );
  }
  try {
    system.reset(type);
  } catch (err) {
    return error(400, 'Base.1.8.GeneralError', messageOf(err));
  }
  return { status: 204 };
}

function missingResetType(): Answer {
  return error(400, 'Base.1.8.ActionParameterMissing', 'The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.');
}

function notInList(value: unknown, property: string, allowed: readonly string[]): Answer {
  return error(400, 'Base.1.8.PropertyValueNotInList', `The value ${JSON.stringify(value)} for the property ${property} is not in the list of acceptable values: ${allowed.join(', ')}.`);
}

function malformed(why: string): Answer {
  return error(400, 'Base.1.8.MalformedJSON', `The request body submitted was malformed JSON and could not be parsed by the receiving service: ${why}`);
}

function notFound(what: string): Answer {
  return error(404, 'Base.1.8.ResourceMissingAtURI', `The resource at the URI ${what} was not found.`);
}

function methodNotAllowed(method: string | undefined, allow: string): Answer {
  return { ...error(405, 'Base.1.8.GeneralError', `The method ${method ?? '?'} is not allowed here; allowed: ${allow}.`), headers: { allow } };
}

function unauthorized(): Answer {
  return {
    ...error(401, 'Base.1.8.NoValidSession', 'The username or password is not valid for this system.'),
    headers: { 'www-authenticate': 'Basic realm="redfish"' },
  };
}

function internalError(err: unknown): Answer {
  return error(500, 'Base.1.8.InternalError', `The request failed due to an internal service error: ${messageOf(err)}`);
}

/** A Redfish error body (DMTF Redfish spec, "Error responses"). */
function error(status: number, messageId: string, message: string): Answer {
  return {
    status,
    body: {
      error: {
        code: 'Base.1.8.GeneralError',
        message,
        '@Message.ExtendedInfo': [{ '@odata.type': '#Message.v1_1_1.Message', MessageId: messageId, Message: message, Severity: 'Warning' }],
      },
    },
  };
}

/** Node reads and drops any request body left unread once the answer is out, keeping the connection usable. */
function write(res: http.ServerResponse, req: http.IncomingMessage, answer: Answer): void {
  const payload = answer.body === undefined ? undefined : JSON.stringify(answer.body);
  const headers: Record<string, string | number> = { ...answer.headers };
  if (payload !== undefined) Object.assign(headers, JSON_HEADERS, { 'content-length': Buffer.byteLength(payload) });
  res.writeHead(answer.status, headers);
  // Node leaves the body off a HEAD answer by itself.
  res.end(req.method === 'HEAD' ? undefined : payload);
}

/** Path segments with an optional trailing slash and the query ($expand, $select — not supported) dropped. */
function pathSegments(url: string): string[] | undefined {
  const q = url.indexOf('?');
  try {
    return (q < 0 ? url : url.slice(0, q))
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

function systemPath(id: string): string {
  return `${SYSTEMS}/${encodeURIComponent(id)}`;
}

function isRead(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD';
}

function basicCredentials(req: http.IncomingMessage): { username: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
  if (m === null) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function authorized(req: http.IncomingMessage, system: EmulatedSystem): boolean {
  const c = basicCredentials(req);
  return c !== undefined && c.username === system.username && c.password === system.password;
}

/** The body as text, or undefined if it is larger than MAX_BODY_BYTES. */
async function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Read to the end even when too large (leaving the loop would destroy the socket before the 413 goes out).
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  return size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8');
}

/** The parsed object, or a string saying why there is none ('' for an empty body). */
function parseObject(raw: string): JsonObject | string {
  if (raw.trim() === '') return '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    return messageOf(err);
  }
  return isObject(parsed) ? parsed : 'the body is not a JSON object';
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function includes<T extends string>(list: readonly T[], v: unknown): v is T {
  return typeof v === 'string' && (list as readonly string[]).includes(v);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
