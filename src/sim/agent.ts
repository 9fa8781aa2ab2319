// The provisioning agent a simulated machine netboots into. It speaks `/agent/v1` (docs/provisioning-protocol.md)
// over real HTTP with the token iPXE gave it: register with the inventory, then long-poll `next`, carrying
// the report of the action it ran last, and run what it is handed — inventory, wipe-disks, stream-image,
// write-datasource, reboot — on the machine's simulated disks, taking simulated time.
//
// Delivery: a report stays with the agent until a `next` call that carries it gets an HTTP answer (200 or
// 204); network failures and unexpected answers are retried with backoff, so a report is sent at least once.
// 401/403 mean this boot is stale (the server minted a newer one): the agent stops for good. The server renews
// the token as it ages (`x-metalplane-token` on any answer): the agent uses the newest one it was given.
import type { Logger } from '../runtime/logger.js';
import { MIN_RETRY_MS, SIM_DURATIONS, simDelay, SimAbortError, type SimSpeed } from './clock.js';
import type { FaultSet } from './faults.js';

export const AGENT_VERSION = 'metalplane-sim-agent/0.1.0';

/** What the agent learns from the kernel command line (`metalplane.*=`). */
export interface AgentParams {
  url: string;
  hardware: string;
  bootId: string;
  token: string;
  /** `metalplane.ca_sha256`: the pin of the CA that `url` (https) is served with. */
  caSha256?: string;
}

export interface AgentInventory {
  cpus: number;
  memoryGiB: number;
  macs: string[];
  disks: Array<{ device: string; sizeGB: number }>;
}

export interface AgentAction {
  workflow: string;
  namespace: string;
  index: number;
  name?: string;
  type: string;
  params: Record<string, unknown>;
  timeoutSeconds?: number;
}

export interface AgentReport {
  workflow: string;
  namespace: string;
  index: number;
  state: 'succeeded' | 'failed';
  reason?: string;
  message?: string;
  result?: Record<string, unknown>;
}

export type AgentState = 'booting' | 'registering' | 'polling' | 'running' | 'reporting' | 'retrying' | 'hung' | 'stopped';

export interface ImageChecksum {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

export interface InstallImageOptions {
  checksum?: ImageChecksum;
  /** Reports how far the write is (0–99 %). */
  progress(percent: number, message: string): Promise<void>;
}

/** The bytes streamed onto the disk are not the image the OperatingSystem names. */
export class ImageChecksumMismatch extends Error {}

/** `sha256:<64 hex>` or `sha512:<128 hex>` (as the OperatingSystem schema admits), else undefined. */
export function parseImageChecksum(v: string): ImageChecksum | undefined {
  const m = /^(sha256|sha512):([0-9a-fA-F]+)$/.exec(v);
  if (!m) return undefined;
  const algorithm = m[1] as ImageChecksum['algorithm'];
  if (m[2]!.length !== (algorithm === 'sha256' ? 64 : 128)) return undefined;
  return { algorithm, hex: m[2]!.toLowerCase() };
}

/** What the agent can touch on its machine. */
export interface AgentHost {
  readonly id: string;
  readonly speed: SimSpeed;
  readonly faults: FaultSet;
  readonly logger: Logger;
  /** A line on the machine's console (what the agent prints as it works). */
  console(text: string): void;
  inventory(): AgentInventory;
  disks(): ReadonlyArray<{ device: string; sizeGB: number }>;
  /** An HTTP request through the machine's NIC; throws without an answer (network down, refused, timeout). */
  request(url: string, init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; signal: AbortSignal; timeoutMs?: number }): Promise<Response>;
  // A simulated machine does these at once; a real one (lab/agent-main.ts) returns a promise and may throw.
  wipeDisk(device: string): void | Promise<void>;
  /**
   * Writes the image onto the boot disk. A real host streams it, reports progress (at most every few seconds)
   * and checks the checksum of what it streamed, throwing ImageChecksumMismatch when it differs.
   */
  installImage(os: string, url: string, opts: InstallImageOptions): void | Promise<void>;
  hasInstalledImage(): boolean;
  writeDatasource(seedfrom: string, instanceId: string): void | Promise<void>;
  /** Warm reset: the machine boots again per its boot override / disk. Aborts this agent's signal. */
  reboot(): void;
  agentState(state: AgentState, action?: string): void;
}

export type AgentExit = { kind: 'rebooted' } | { kind: 'stopped'; message: string };

export const SUPPORTED_ACTIONS = ['inventory', 'wipe-disks', 'stream-image', 'write-datasource', 'reboot'] as const;

/** Backoff of failed requests, in simulated seconds: 0.5, 1, 2, 4, 5, 5 … (and never under MIN_RETRY_MS real). */
const BACKOFF_FIRST_SECONDS = 0.5;
const BACKOFF_MAX_SECONDS = 5;
/** stream-image progress: at most one post per this many real ms. */
const PROGRESS_MIN_INTERVAL_MS = 500;
const DEFAULT_IMAGE_MB = 1536;
/** Where the server hands out a renewed agent token (docs/provisioning-protocol.md §3). */
const RENEWED_TOKEN_HEADER = 'x-metalplane-token';
/** Request timeout beyond the long poll's own wait. */
const REQUEST_SLACK_MS = 15_000;

/** The server said this boot is over (401/403). */
class StaleBoot extends Error {}

interface Answer {
  status: number;
  body: unknown;
}

/** Runs the agent until the machine reboots it (after reporting), its boot goes stale, or `signal` aborts (throws). */
export async function runAgent(host: AgentHost, params: AgentParams, signal: AbortSignal): Promise<AgentExit> {
  const agent = new Agent(host, params, signal);
  try {
    return await agent.run();
  } catch (err) {
    if (err instanceof StaleBoot) {
      host.agentState('stopped');
      host.console(`this boot is over (${err.message}); stopping`);
      host.logger.info({ hardware: params.hardware, bootId: params.bootId, err: err.message }, 'sim agent: boot is stale, stopping');
      return { kind: 'stopped', message: err.message };
    }
    throw err;
  }
}

class Agent {
  private readonly base: string;
  private pollSeconds = 20;
  private token: string;

  constructor(
    private readonly host: AgentHost,
    private readonly params: AgentParams,
    private readonly signal: AbortSignal,
  ) {
    this.base = params.url.replace(/\/+$/, '');
    this.token = params.token;
  }

  async run(): Promise<AgentExit> {
    await this.checkpoint('registering');
    const reg = await this.send('/agent/v1/register', { bootId: this.params.bootId, version: AGENT_VERSION, inventory: this.host.inventory() }, 0, 'registering');
    const timeout = isObject(reg.body) ? reg.body['pollTimeoutSeconds'] : undefined;
    if (typeof timeout === 'number' && Number.isFinite(timeout) && timeout >= 0 && timeout <= 300) this.pollSeconds = timeout;
    this.host.logger.debug({ hardware: this.params.hardware, bootId: this.params.bootId }, 'sim agent: registered');
    this.host.console(`registered as ${this.params.hardware} (${AGENT_VERSION}); waiting for actions`);

    let report: AgentReport | undefined;
    for (;;) {
      await this.checkpoint('polling');
      const started = Date.now();
      const answer = await this.send(`/agent/v1/next?wait=${this.pollSeconds}`, this.nextBody(report), this.pollSeconds, 'polling');
      report = undefined; // it reached the server: 200 and 204 both mean it was recorded
      if (answer.status !== 200) {
        // A server that answers "nothing" at once instead of holding the poll must not be hammered.
        if (Date.now() - started < MIN_RETRY_MS) await simDelay(this.host.speed, 0, this.signal, MIN_RETRY_MS);
        continue;
      }
      const action = parseAction(answer.body);
      if (typeof action === 'string') {
        this.host.logger.warn({ err: action }, 'sim agent: ignoring a malformed action');
        await simDelay(this.host.speed, BACKOFF_FIRST_SECONDS, this.signal, MIN_RETRY_MS);
        continue;
      }
      if (action.type === 'reboot') {
        // The report must reach the server before the machine goes down; any action in the answer is moot.
        await this.checkpoint('reporting', action.type);
        await this.send('/agent/v1/next?wait=0', this.nextBody(succeeded(action)), 0, 'reporting');
        this.host.console(`${describeAction(action)}: rebooting now`);
        this.host.logger.debug({ hardware: this.params.hardware }, 'sim agent: rebooting');
        this.host.reboot();
        return { kind: 'rebooted' };
      }
      this.host.console(`${describeAction(action)}: started`);
      report = await this.runAction(action);
      this.host.console(
        report.state === 'succeeded' ? `${describeAction(action)}: succeeded${describeResult(report.result)}` : `${describeAction(action)}: failed: ${report.reason}: ${report.message}`,
      );
      await this.checkpoint('reporting', action.type);
    }
  }

  private nextBody(report: AgentReport | undefined): Record<string, unknown> {
    return report === undefined ? { bootId: this.params.bootId } : { bootId: this.params.bootId, report };
  }

  private async runAction(action: AgentAction): Promise<AgentReport> {
    this.host.agentState('running', action.type);
    this.host.logger.debug({ action: action.type, workflow: action.workflow, index: action.index }, 'sim agent: running action');
    switch (action.type) {
      case 'inventory':
        await this.work(SIM_DURATIONS.inventorySeconds, action.type);
        return succeeded(action, { inventory: this.host.inventory() });
      case 'wipe-disks':
        return this.wipeDisks(action);
      case 'stream-image':
        return this.streamImage(action);
      case 'write-datasource':
        return this.writeDatasource(action);
      default:
        return failed(
          action,
          'UnsupportedAction',
          `action type ${JSON.stringify(action.type)} is not supported by ${AGENT_VERSION}; supported: ${SUPPORTED_ACTIONS.join(', ')}`,
        );
    }
  }

  private async wipeDisks(action: AgentAction): Promise<AgentReport> {
    const all = this.host.disks();
    const wanted = action.params['disks'];
    let devices: string[];
    if (wanted === undefined) devices = all.map((d) => d.device);
    else if (Array.isArray(wanted) && wanted.every((d): d is string => typeof d === 'string')) devices = wanted;
    else return failed(action, 'InvalidParams', `wipe-disks: params.disks must be a list of device paths, got ${JSON.stringify(wanted)}`);
    const unknown = devices.filter((d) => !all.some((x) => x.device === d));
    if (unknown.length > 0) {
      return failed(action, 'DiskNotFound', `wipe-disks: no disk ${unknown.join(', ')} on this machine; it has ${all.map((d) => d.device).join(', ')}`);
    }
    for (const device of devices) {
      await this.work(SIM_DURATIONS.wipePerDiskSeconds, action.type);
      if (this.host.faults.has('disk-failure')) {
        const disk = all.find((d) => d.device === device)!;
        // A plausible bad sector well inside the disk (sectors of 512 bytes).
        const sector = Math.floor(((disk.sizeGB * 1e9) / 512) * 0.61803);
        return failed(action, 'DiskFailure', `wipe ${device}: I/O error (sector ${sector})`);
      }
      try {
        await this.host.wipeDisk(device);
      } catch (err) {
        return failed(action, 'DiskFailure', `wipe ${device}: ${messageOf(err)}`);
      }
    }
    return succeeded(action, { disks: devices });
  }

  private async streamImage(action: AgentAction): Promise<AgentReport> {
    const { url, os, sizeMB, checksum: checksumParam } = action.params;
    if (typeof url !== 'string' || url === '') return failed(action, 'InvalidParams', `stream-image: params.url must be the image URL, got ${JSON.stringify(url)}`);
    if (typeof os !== 'string' || os === '') return failed(action, 'InvalidParams', `stream-image: params.os must name the OS, got ${JSON.stringify(os)}`);
    if (sizeMB !== undefined && (typeof sizeMB !== 'number' || !(sizeMB > 0))) {
      return failed(action, 'InvalidParams', `stream-image: params.sizeMB must be a positive number, got ${JSON.stringify(sizeMB)}`);
    }
    const checksum = checksumParam === undefined ? undefined : typeof checksumParam === 'string' ? parseImageChecksum(checksumParam) : undefined;
    if (checksumParam !== undefined && checksum === undefined) {
      return failed(action, 'InvalidParams', `stream-image: params.checksum must be sha256:<64 hex digits> or sha512:<128 hex digits>, got ${JSON.stringify(checksumParam)}`);
    }
    const size = sizeMB ?? DEFAULT_IMAGE_MB;
    const bootDisk = this.host.disks()[0];
    if (bootDisk === undefined) return failed(action, 'DiskNotFound', 'stream-image: the machine has no disk to write the image to');
    const stepSeconds = size / SIM_DURATIONS.imageMBPerSecond / 10;
    let lastPost = 0;
    for (let step = 1; step <= 10; step++) {
      await this.work(stepSeconds, action.type);
      if (this.host.faults.has('nic-down')) {
        return failed(action, 'ImageStreamFailed', `stream ${url} to ${bootDisk.device}: network is down after ${(step - 1) * 10}% (${Math.round(((step - 1) * size) / 10)} MB)`);
      }
      // Progress for long streams, about every 10% but at most ~2 per real second; none at speed max.
      if (step < 10 && this.host.speed !== 'max' && Date.now() - lastPost >= PROGRESS_MIN_INTERVAL_MS) {
        lastPost = Date.now();
        await this.postProgress(action, step * 10, `streamed ${Math.round((step * size) / 10)} of ${size} MB to ${bootDisk.device}`);
      }
    }
    try {
      await this.host.installImage(os, url, { checksum, progress: (percent, message) => this.postProgress(action, percent, message) });
    } catch (err) {
      if (err instanceof SimAbortError || err instanceof StaleBoot) throw err;
      if (err instanceof ImageChecksumMismatch) return failed(action, 'ImageChecksumMismatch', `stream ${url} to ${bootDisk.device}: ${err.message}`);
      return failed(action, 'ImageStreamFailed', `stream ${url} to ${bootDisk.device}: ${messageOf(err)}`);
    }
    return succeeded(action, { os, sizeMB: size, device: bootDisk.device });
  }

  private async writeDatasource(action: AgentAction): Promise<AgentReport> {
    const { seedfrom, instanceId } = action.params;
    if (typeof seedfrom !== 'string' || !/^https?:\/\/.+\/$/.test(seedfrom)) {
      return failed(action, 'InvalidParams', `write-datasource: params.seedfrom must be an http(s) URL ending in /, got ${JSON.stringify(seedfrom)}`);
    }
    if (typeof instanceId !== 'string' || instanceId === '') {
      return failed(action, 'InvalidParams', `write-datasource: params.instanceId must be a non-empty string, got ${JSON.stringify(instanceId)}`);
    }
    if (!this.host.hasInstalledImage()) {
      const device = this.host.disks()[0]?.device ?? 'the boot disk';
      return failed(action, 'NoOperatingSystem', `write-datasource: no OS installed on ${device}; stream-image must run first`);
    }
    await this.work(SIM_DURATIONS.writeDatasourceSeconds, action.type);
    try {
      await this.host.writeDatasource(seedfrom, instanceId);
    } catch (err) {
      return failed(action, 'DatasourceFailed', `write-datasource: ${messageOf(err)}`);
    }
    return succeeded(action, { datasource: `ds=nocloud;s=${seedfrom}` });
  }

  /** Best effort: a lost progress post is not retried (the next one supersedes it), but 401/403 still stop the agent. */
  private async postProgress(action: AgentAction, progress: number, message: string): Promise<void> {
    await this.checkpoint('running', action.type);
    const body = { workflow: action.workflow, namespace: action.namespace, index: action.index, progress, message };
    let answer: Answer;
    try {
      answer = await this.once('/agent/v1/progress', body, 0);
    } catch (err) {
      if (this.signal.aborted) throw new SimAbortError();
      this.host.logger.debug({ err: messageOf(err) }, 'sim agent: progress not delivered');
      return;
    }
    if (answer.status === 401 || answer.status === 403) throw new StaleBoot(`POST /agent/v1/progress: HTTP ${answer.status}${describeBody(answer.body)}`);
  }

  /** Simulated work; an agent-hang injected meanwhile holds the agent right after it. */
  private async work(seconds: number, action: string): Promise<void> {
    await simDelay(this.host.speed, seconds, this.signal);
    await this.checkpoint('running', action);
  }

  /** Where an agent-hang fault holds the agent (no requests, no progress) until it is cleared. */
  private async checkpoint(state: AgentState, action?: string): Promise<void> {
    if (this.host.faults.has('agent-hang')) {
      this.host.agentState('hung', action);
      await this.host.faults.waitUntilCleared('agent-hang', this.signal);
    }
    this.signal.throwIfAborted();
    this.host.agentState(state, action);
  }

  /**
   * A request retried until it gets a 2xx: network failures, 5xx and other unexpected answers back off
   * (0.5 → 5 simulated seconds, ≥ 50 ms real); 401/403 throw StaleBoot.
   */
  private async send(path: string, body: unknown, waitSeconds: number, state: AgentState): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      let failure: string;
      try {
        const answer = await this.once(path, body, waitSeconds);
        if (answer.status >= 200 && answer.status < 300) return answer;
        if (answer.status === 401 || answer.status === 403) throw new StaleBoot(`POST ${path}: HTTP ${answer.status}${describeBody(answer.body)}`);
        failure = `HTTP ${answer.status}${describeBody(answer.body)}`;
      } catch (err) {
        if (err instanceof StaleBoot) throw err;
        if (this.signal.aborted) throw new SimAbortError();
        failure = messageOf(err);
      }
      if (attempt === 0 || attempt % 20 === 0) this.host.logger.debug({ path, attempt, err: failure }, 'sim agent: request failed, retrying');
      this.host.console(`POST ${path.split('?')[0]}: ${failure}; retrying`);
      this.host.agentState('retrying');
      const seconds = Math.min(BACKOFF_FIRST_SECONDS * 2 ** attempt, BACKOFF_MAX_SECONDS);
      await simDelay(this.host.speed, seconds, this.signal, MIN_RETRY_MS);
      await this.checkpoint(state);
    }
  }

  private async once(path: string, body: unknown, waitSeconds: number): Promise<Answer> {
    const res = await this.host.request(`${this.base}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${this.token}`,
        'content-type': 'application/json',
        accept: 'application/json',
        'user-agent': AGENT_VERSION,
      },
      body: JSON.stringify(body),
      signal: this.signal,
      timeoutMs: waitSeconds * 1000 + REQUEST_SLACK_MS,
    });
    const text = await res.text();
    this.signal.throwIfAborted();
    const renewed = res.headers.get(RENEWED_TOKEN_HEADER);
    if (renewed && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(renewed)) this.token = renewed;
    let parsed: unknown = undefined;
    if (text.trim() !== '') {
      try {
        parsed = JSON.parse(text) as unknown;
      } catch {
        parsed = text;
      }
    }
    return { status: res.status, body: parsed };
  }
}

/** `{ action: {...} }` → the action, or a string saying what is wrong with it. */
export function parseAction(body: unknown): AgentAction | string {
  const a = isObject(body) ? body['action'] : undefined;
  if (!isObject(a)) return `a 200 answer to /agent/v1/next must be { "action": {...} }, got ${JSON.stringify(body)}`;
  const { workflow, namespace, index, name, type, params, timeoutSeconds } = a;
  if (typeof workflow !== 'string' || typeof namespace !== 'string' || typeof index !== 'number' || !Number.isInteger(index) || typeof type !== 'string') {
    return `the action needs workflow, namespace (strings), index (integer) and type (string), got ${JSON.stringify(a)}`;
  }
  if (params !== undefined && !isObject(params)) return `action params must be an object, got ${JSON.stringify(params)}`;
  const action: AgentAction = { workflow, namespace, index, type, params: params ?? {} };
  if (typeof name === 'string') action.name = name;
  if (typeof timeoutSeconds === 'number') action.timeoutSeconds = timeoutSeconds;
  return action;
}

/** `stream-image (action 3 of workflow default/web-1-provision-1)` as the console shows it. */
function describeAction(action: AgentAction): string {
  return `${action.name ?? action.type} (action ${action.index + 1} of workflow ${action.namespace}/${action.workflow})`;
}

/** A short `: os=…, device=…` of an action's result for the console (scalars only; the inventory is too long). */
function describeResult(result: Record<string, unknown> | undefined): string {
  if (!result) return '';
  const parts = Object.entries(result)
    .filter(([, v]) => typeof v === 'string' || typeof v === 'number' || (Array.isArray(v) && v.every((x) => typeof x === 'string')))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
  return parts.length ? `: ${parts.join(', ')}` : '';
}

function succeeded(action: AgentAction, result?: Record<string, unknown>): AgentReport {
  const r: AgentReport = { workflow: action.workflow, namespace: action.namespace, index: action.index, state: 'succeeded' };
  if (result !== undefined) r.result = result;
  return r;
}

function failed(action: AgentAction, reason: string, message: string): AgentReport {
  return { workflow: action.workflow, namespace: action.namespace, index: action.index, state: 'failed', reason, message };
}

/** `: <message>` from a JSON error answer (`{ errors: [...] }`, a kube Status, `{ message }`), or a text snippet. */
function describeBody(body: unknown): string {
  if (body === undefined) return '';
  if (typeof body === 'string') return `: ${body.slice(0, 200)}`;
  if (isObject(body)) {
    const errors = body['errors'];
    if (Array.isArray(errors) && errors.length > 0) return `: ${errors.map(String).join('; ')}`;
    if (typeof body['message'] === 'string') return `: ${body['message']}`;
  }
  return `: ${JSON.stringify(body).slice(0, 200)}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
