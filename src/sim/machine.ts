// One simulated machine: the hardware behind a Redfish BMC (power, boot override), its firmware (POST, then
// PXE → iPXE script over real HTTP, or the local disk), the in-memory provisioning agent it netboots into
// (agent.ts), and the installed OS, whose cloud-init reads the NoCloud datasource and phones home. Everything
// it does to metalplane goes over real HTTP to the URLs it was given or told by iPXE — the controllers cannot
// tell it from a real machine. Durations come from clock.ts, scaled by the speed; faults from faults.ts.
import { createHash } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import YAML from 'yaml';
import { childLogger, silentLogger, type Logger } from '../runtime/logger.js';
import { runAgent, type AgentHost, type AgentInventory, type AgentParams, type AgentState } from './agent.js';
import { isAbortError, MIN_RETRY_MS, SIM_DURATIONS, simDelay, SimAbortError, type SimSpeed } from './clock.js';
import { ConsoleLog, redactTokens, type ConsoleLine } from './console-log.js';
import { FaultSet, type ActiveFault } from './faults.js';
import type { BmcFault, BootEnabled, BootTarget, EmulatedSystem, EmulatedSystemInfo, ResetType } from './redfish-emulator.js';

export interface SimDisk {
  device: string;
  sizeGB: number;
  type: 'SSD' | 'HDD' | 'NVME';
}

export interface SimNic {
  name: string;
  /** Lower case, colon separated. */
  mac: string;
}

export interface SimMachineSpec {
  /** The Redfish system id, e.g. `da11-r01-s03`. */
  id: string;
  username: string;
  password: string;
  manufacturer: string;
  model: string;
  serialNumber: string;
  uuid: string;
  /** CPU cores, as the agent reports them. */
  cpus: number;
  /** Physical processors (Redfish ProcessorSummary.Count); default 1. */
  sockets?: number;
  memoryGiB: number;
  /** The first NIC netboots. */
  nics: SimNic[];
  /** The first disk is the boot disk. */
  disks: SimDisk[];
}

export interface SimMachineOptions {
  spec: SimMachineSpec;
  /** The plain-HTTP URL of metalplane the firmware fetches its iPXE script from (DHCP would say so). */
  serverUrl: string;
  speed: SimSpeed;
  logger?: Logger;
  faults?: FaultSet;
  /** The console output's bound (default 500 lines). */
  consoleLines?: number;
}

export type SimPhase = 'off' | 'firmware' | 'pxe' | 'agent' | 'os' | 'halted' | 'custom';

export interface MachineSnapshot {
  id: string;
  power: 'on' | 'off';
  phase: SimPhase;
  /** Boots since the simulation started (power-ons, resets and agent reboots). */
  bootCount: number;
  /** The OS image on the boot disk (the `os` of the last stream-image), if any. */
  installedImage?: string;
  lastError?: string;
  faults: ActiveFault[];
  bootOverride: { target: BootTarget; enabled: BootEnabled };
  /** What the current boot booted: network or disk (absent while in firmware or off). */
  bootedFrom?: 'network' | 'disk';
  /** The NoCloud seedfrom written by write-datasource. */
  datasource?: string;
  /** custom iPXE: the URL the script chained to. */
  chainUrl?: string;
  /**
   * The agent of the current boot, when it runs, with the token from its kernel command line: the sim API is
   * the machine's console, and on a real machine whoever sits at the console can read `/proc/cmdline` too.
   */
  agent?: { hardware: string; bootId: string; token: string; state: AgentState; action?: string };
  /** The installed OS phoned home in this boot (cloud-init finished). */
  phonedHomeAt?: string;
}

/** What the firmware made of an iPXE script. */
export type IpxeScript =
  | { kind: 'agent'; kernel: string; agent: AgentParams; echo: string[] }
  | { kind: 'exit'; echo: string[] }
  | { kind: 'chain'; url: string; echo: string[] }
  | { kind: 'invalid'; reason: string };

/** A request the machine sends through its NIC: fetch's init with the boot's signal and an optional timeout. */
export interface MachineRequestInit {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  signal: AbortSignal;
  /** Real milliseconds before the request is given up as a network failure. */
  timeoutMs?: number;
}

/** A request that did not get an HTTP answer: NIC down, connection refused, timeout. */
export class MachineNetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MachineNetworkError';
  }
}

const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/** cloud-init's read_seeded and phone_home both try 10 times. */
const CLOUD_INIT_TRIES = 10;

interface DiskContents {
  installedImage?: string;
  imageUrl?: string;
  datasource?: { seedfrom: string; instanceId: string };
}

export class SimMachine implements EmulatedSystem {
  readonly id: string;
  readonly username: string;
  readonly password: string;
  readonly spec: SimMachineSpec;
  readonly faults: FaultSet;
  readonly speed: SimSpeed;
  readonly serverUrl: string;
  /** The CA the agent's initramfs pinned (PEM), for https to metalplane. */
  private trustedCa: string | undefined;
  private httpsAgent: https.Agent | undefined;
  private httpsAgentCa: string | undefined;

  private readonly logger: Logger;
  private power: 'on' | 'off' = 'off';
  private phase: SimPhase = 'off';
  private override: { target: BootTarget; enabled: BootEnabled } = { target: 'None', enabled: 'Disabled' };
  private bootCount = 0;
  private bootAbort: AbortController | undefined;
  /** Aborted when the NIC goes down, so requests in flight fail as they would on a real wire. */
  private nicAbort = new AbortController();
  private disk: DiskContents = {};
  private lastError: string | undefined;
  private bootedFrom: 'network' | 'disk' | undefined;
  private chainUrl: string | undefined;
  private agent: MachineSnapshot['agent'];
  private phonedHomeAt: string | undefined;
  private readonly listeners = new Set<(s: MachineSnapshot) => void>();
  /** What the machine writes to its serial console: the boot log an operator reads through the sim API. */
  private readonly console: ConsoleLog;

  constructor(opts: SimMachineOptions) {
    if (opts.spec.nics.length === 0) throw new Error(`machine ${opts.spec.id}: needs at least one NIC`);
    this.spec = opts.spec;
    this.id = opts.spec.id;
    this.username = opts.spec.username;
    this.password = opts.spec.password;
    this.speed = opts.speed;
    this.serverUrl = opts.serverUrl.replace(/\/+$/, '');
    this.faults = opts.faults ?? new FaultSet();
    this.logger = childLogger(opts.logger ?? silentLogger, { machine: opts.spec.id });
    this.console = new ConsoleLog({ maxLines: opts.consoleLines, redact: redactTokens });
    this.faults.onChange((type, present) => {
      if (type === 'nic-down' && present) {
        this.nicAbort.abort(new MachineNetworkError('network is down (nic-down)'));
        this.nicAbort = new AbortController();
      }
      this.changed();
    });
  }

  // ---- EmulatedSystem (the BMC's view) ------------------------------------------------------------------------

  info(): EmulatedSystemInfo {
    return {
      powerState: this.power === 'on' ? 'On' : 'Off',
      bootTarget: this.override.target,
      bootEnabled: this.override.enabled,
      manufacturer: this.spec.manufacturer,
      model: this.spec.model,
      serialNumber: this.spec.serialNumber,
      uuid: this.spec.uuid,
      memoryGiB: this.spec.memoryGiB,
      processorCount: this.spec.sockets ?? 1,
      macs: this.spec.nics.map((n) => n.mac),
    };
  }

  reset(type: ResetType): void {
    // The BMC takes the request; the power rail does not follow (a stuck relay, a hung power sequencer).
    if (this.faults.has('power-stuck')) {
      this.logger.debug({ reset: type }, 'sim: power-stuck, reset accepted and ignored');
      this.console.write(`BMC: ${type} accepted, but the power state did not change (power-stuck)`);
      return;
    }
    switch (type) {
      case 'On':
        if (this.power === 'off') this.powerOn();
        return;
      case 'ForceOff':
      case 'GracefulShutdown':
        if (this.power === 'on') this.powerOff();
        return;
      case 'ForceRestart':
      case 'GracefulRestart':
      case 'PowerCycle':
        // Lenient like most BMCs: restarting a machine that is off powers it on.
        if (this.power === 'off') this.powerOn();
        else this.startBoot(type);
        return;
      case 'Nmi':
        if (this.power === 'off') throw new Error(`system ${this.id} is powered off: an NMI needs it on`);
        return;
    }
  }

  setBoot(target: BootTarget, enabled: BootEnabled): void {
    this.override = enabled === 'Disabled' ? { target: 'None', enabled: 'Disabled' } : { target, enabled };
    this.changed();
  }

  bmcFault(): BmcFault | undefined {
    return this.faults.has('bmc-unreachable') ? { kind: 'unreachable' } : undefined;
  }

  // ---- observable state ------------------------------------------------------------------------------------

  snapshot(): MachineSnapshot {
    const s: MachineSnapshot = {
      id: this.id,
      power: this.power,
      phase: this.phase,
      bootCount: this.bootCount,
      faults: this.faults.list(),
      bootOverride: { ...this.override },
    };
    if (this.disk.installedImage !== undefined) s.installedImage = this.disk.installedImage;
    if (this.lastError !== undefined) s.lastError = this.lastError;
    if (this.bootedFrom !== undefined) s.bootedFrom = this.bootedFrom;
    if (this.disk.datasource !== undefined) s.datasource = this.disk.datasource.seedfrom;
    if (this.chainUrl !== undefined) s.chainUrl = this.chainUrl;
    if (this.agent !== undefined) s.agent = { ...this.agent };
    if (this.phonedHomeAt !== undefined) s.phonedHomeAt = this.phonedHomeAt;
    return s;
  }

  /** Calls `listener` with a fresh snapshot after every change; answers an unsubscribe function. */
  onChange(listener: (s: MachineSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The console output after line `after` (all of it by default); bounded, see console-log.ts. */
  readConsole(after?: number): { lines: ConsoleLine[]; dropped: number; last: number } {
    return this.console.read(after);
  }

  /** The MAC of the NIC that netboots. */
  get pxeMac(): string {
    return this.spec.nics[0]!.mac;
  }

  /** Powers off and stops everything running (the datacenter is shutting down). */
  stop(): void {
    this.bootAbort?.abort();
    this.bootAbort = undefined;
    this.power = 'off';
    this.phase = 'off';
    this.faults.dispose();
    this.listeners.clear();
  }

  // ---- power and boot ------------------------------------------------------------------------------------

  private powerOn(): void {
    this.power = 'on';
    this.startBoot('On');
  }

  private powerOff(): void {
    this.bootAbort?.abort();
    this.bootAbort = undefined;
    this.power = 'off';
    this.phase = 'off';
    this.clearBootState();
    this.console.write('--- power off ---');
    this.logger.debug({}, 'sim: powered off');
    this.changed();
  }

  private clearBootState(): void {
    this.bootedFrom = undefined;
    this.chainUrl = undefined;
    this.agent = undefined;
    this.phonedHomeAt = undefined;
  }

  /** A new boot: whatever ran (agent, OS, PXE retries) stops, firmware starts over. */
  private startBoot(why: string): void {
    this.bootAbort?.abort();
    const abort = new AbortController();
    this.bootAbort = abort;
    this.bootCount++;
    this.lastError = undefined;
    this.clearBootState();
    this.console.write(`--- ${why === 'On' ? 'power on' : why === 'agent reboot' ? 'reboot (from the running system)' : `reset (${why})`}: boot ${this.bootCount} ---`);
    this.setPhase('firmware');
    this.logger.debug({ why, boot: this.bootCount }, 'sim: booting');
    this.runBoot(abort.signal).catch((err: unknown) => {
      if (abort.signal.aborted || isAbortError(err)) return;
      this.lastError = `boot failed: ${messageOf(err)}`;
      this.console.write(`boot failed: ${messageOf(err)}`);
      this.setPhase('halted');
      this.logger.warn({ err: messageOf(err) }, 'sim: boot failed');
    });
  }

  private async runBoot(signal: AbortSignal): Promise<void> {
    const s = this.spec;
    this.console.write(
      `${s.manufacturer} ${s.model} BIOS, serial ${s.serialNumber}\n` +
        `POST: ${s.sockets ?? 1} CPU socket(s), ${s.cpus} cores, ${s.memoryGiB} GiB RAM, ` +
        `${s.disks.map((d) => `${d.device} ${d.sizeGB} GB ${d.type}`).join(', ')}`,
    );
    await this.bootDelay(SIM_DURATIONS.firmwareSeconds, signal);
    const device = this.chooseBootDevice();
    this.console.write(`POST complete; boot device: ${device === 'bios' ? 'BIOS setup' : device === 'network' ? `network (PXE on ${s.nics[0]!.name} ${this.pxeMac})` : s.disks[0]?.device ?? 'disk'}`);
    if (device === 'bios') {
      this.lastError = 'stopped in BIOS setup (boot override BiosSetup)';
      this.console.write('Entering BIOS setup (boot override BiosSetup)');
      this.setPhase('halted');
      return;
    }
    if (device === 'network') await this.networkBoot(signal);
    else await this.diskBoot(signal);
  }

  /** The override if one is set (a Once override is used up), else the disk if it has an OS, else the network. */
  private chooseBootDevice(): 'network' | 'disk' | 'bios' {
    const { target, enabled } = this.override;
    let wanted: BootTarget = 'None';
    if (enabled !== 'Disabled' && target !== 'None') {
      wanted = target;
      if (enabled === 'Once') this.override = { target: 'None', enabled: 'Disabled' };
    }
    if (wanted === 'Pxe') return 'network';
    if (wanted === 'BiosSetup') return 'bios';
    // Hdd, Cd (no media in the drive) and no override: an empty disk falls through to the network.
    return this.disk.installedImage !== undefined ? 'disk' : 'network';
  }

  private async networkBoot(signal: AbortSignal): Promise<void> {
    this.bootedFrom = 'network';
    this.setPhase('pxe');
    // The MAC is sent as is: colons are legal in a query and iPXE's ${net0/mac} sends them unencoded.
    const url = `${this.serverUrl}/boot/v1/ipxe?mac=${this.pxeMac}`;
    let script: IpxeScript;
    this.console.write(`PXE: DHCP on ${this.spec.nics[0]!.name} (${this.pxeMac}); iPXE: chainloading ${url}`);
    for (;;) {
      const got = await this.fetchScript(url, signal);
      if (got.kind !== 'invalid') {
        script = got;
        break;
      }
      this.console.write(`${got.reason}; retrying`);
      this.lastError = got.reason;
      this.changed();
      // Real firmware retries PXE forever; so does this, until power off or reset.
      await simDelay(this.speed, SIM_DURATIONS.pxeRetrySeconds * this.faults.bootFactor(), signal, MIN_RETRY_MS);
    }
    this.lastError = undefined;
    for (const line of script.echo) this.console.write(`iPXE: ${line}`);
    switch (script.kind) {
      case 'exit':
        this.console.write('iPXE: exit: back to the firmware, next boot device');
        // iPXE hands back to the firmware, which tries the next boot device: the disk.
        if (this.disk.installedImage === undefined) {
          this.lastError = ['no bootable device', ...script.echo].join(': ');
          this.console.write('No bootable device: the boot disk is empty');
          this.setPhase('halted');
          return;
        }
        await this.diskBoot(signal);
        return;
      case 'chain':
        this.chainUrl = script.url;
        this.console.write(`iPXE: chain ${script.url}`);
        this.setPhase('custom');
        this.logger.debug({ url: script.url }, 'sim: custom iPXE chain');
        return;
      case 'agent':
        this.console.write(`iPXE: kernel ${script.kernel}; booting the metalplane agent (hardware ${script.agent.hardware}, boot ${script.agent.bootId})`);
        await this.agentBoot(script.agent, signal);
        return;
    }
  }

  private async fetchScript(url: string, signal: AbortSignal): Promise<IpxeScript> {
    let status: number;
    let text: string;
    try {
      const res = await this.request(url, { signal, timeoutMs: 10_000 });
      status = res.status;
      text = await res.text();
    } catch (err) {
      if (signal.aborted) throw new SimAbortError();
      return { kind: 'invalid', reason: `PXE: GET ${url}: ${messageOf(err)}` };
    }
    signal.throwIfAborted();
    // An unknown MAC gets 404 with a script that explains and exits: iPXE runs it all the same.
    if (status !== 200 && status !== 404) return { kind: 'invalid', reason: `PXE: GET ${url}: HTTP ${status}` };
    const parsed = parseIpxeScript(text);
    if (parsed.kind === 'invalid') return { kind: 'invalid', reason: `PXE: GET ${url}: HTTP ${status}: ${parsed.reason}` };
    return parsed;
  }

  private async agentBoot(params: AgentParams, signal: AbortSignal): Promise<void> {
    this.agent = { hardware: params.hardware, bootId: params.bootId, token: params.token, state: 'booting' };
    this.setPhase('agent');
    // Kernel + initramfs download and agent start-up are in this delay (the sim does not fetch the assets).
    await this.bootDelay(SIM_DURATIONS.agentBootSeconds, signal);
    if (params.url.startsWith('https:')) {
      // The initramfs trusts the server's CA only after checking it against the pin on the kernel line.
      const ca = await this.fetchPinnedCa(params, signal);
      if (ca === undefined) return;
      this.trustedCa = ca;
      this.console.write('initramfs: the server\'s CA matches metalplane.ca_sha256');
    }
    this.console.write(`metalplane-agent: started, talking to ${params.url}`);
    const exit = await runAgent(this.agentHost(), params, signal);
    signal.throwIfAborted();
    if (exit.kind === 'stopped') {
      this.console.write(`metalplane-agent: stopped: ${exit.message}`);
      this.lastError = `agent stopped: ${exit.message}`;
      this.changed();
    }
  }

  private async diskBoot(signal: AbortSignal): Promise<void> {
    this.bootedFrom = 'disk';
    this.setPhase('os');
    const image = this.disk.installedImage ?? 'the installed system';
    this.console.write(`GRUB: booting ${image} from ${this.spec.disks[0]?.device ?? 'the boot disk'}`);
    await this.bootDelay(SIM_DURATIONS.osBootSeconds, signal);
    this.console.write(`${image}: reached target multi-user.target`);
    const ds = this.disk.datasource;
    // An OS without a datasource boots and sits there: cloud-init finds nothing to do.
    if (ds === undefined) {
      this.console.write('cloud-init: no datasource found; nothing to do');
      return;
    }
    this.console.write(`cloud-init: datasource NoCloud, seedfrom ${ds.seedfrom}`);
    await simDelay(this.speed, SIM_DURATIONS.cloudInitSeconds, signal);
    await this.runCloudInit(ds, signal);
  }

  /** cloud-init's NoCloud datasource with `seedfrom`, then the phone_home module. */
  private async runCloudInit(ds: { seedfrom: string; instanceId: string }, signal: AbortSignal): Promise<void> {
    const base = ds.seedfrom.endsWith('/') ? ds.seedfrom : `${ds.seedfrom}/`;
    const metaData = await this.cloudInitGet(`${base}meta-data`, signal, false);
    if (metaData === undefined) return;
    const userData = await this.cloudInitGet(`${base}user-data`, signal, false);
    if (userData === undefined) return;
    await this.cloudInitGet(`${base}vendor-data`, signal, true);
    this.console.write(`cloud-init: read meta-data and user-data (${Buffer.byteLength(userData)} bytes${userData.startsWith('#cloud-config') ? ', #cloud-config' : ''}); running modules`);

    const meta = parseMetaData(metaData);
    const instanceId = meta['instance-id'] ?? ds.instanceId;
    const hostname = meta['local-hostname'] ?? meta['hostname'] ?? this.id;
    const form = new URLSearchParams({ instance_id: instanceId, hostname, fqdn: hostname }).toString();
    const url = `${base}phone-home`;
    for (let attempt = 1; ; attempt++) {
      let failure: string;
      try {
        const res = await this.request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Cloud-Init/24.1 (metalplane sim)' },
          body: form,
          signal,
        });
        await res.text();
        signal.throwIfAborted();
        if (res.ok) {
          this.phonedHomeAt = new Date().toISOString();
          this.console.write(`cloud-init: phone_home: POST ${url}: HTTP ${res.status}\ncloud-init: finished; ${hostname} is up`);
          this.lastError = undefined;
          this.logger.debug({ url }, 'sim: phoned home');
          this.changed();
          return;
        }
        failure = `HTTP ${res.status}`;
      } catch (err) {
        if (signal.aborted) throw new SimAbortError();
        failure = messageOf(err);
      }
      this.lastError = `cloud-init phone_home: POST ${url}: ${failure} (try ${attempt} of ${CLOUD_INIT_TRIES})`;
      this.console.write(this.lastError);
      this.changed();
      if (attempt >= CLOUD_INIT_TRIES) return;
      await simDelay(this.speed, Math.min(3 * 2 ** (attempt - 1), 30), signal, MIN_RETRY_MS);
    }
  }

  /** One datasource file, tried 10 times; undefined when it never came (cloud-init gives up on the datasource). */
  private async cloudInitGet(url: string, signal: AbortSignal, optional: boolean): Promise<string | undefined> {
    for (let attempt = 1; ; attempt++) {
      let failure: string;
      try {
        const res = await this.request(url, { signal, headers: { 'user-agent': 'Cloud-Init/24.1 (metalplane sim)' } });
        const text = await res.text();
        signal.throwIfAborted();
        if (res.ok) return text;
        if (optional && res.status === 404) return '';
        failure = `HTTP ${res.status}`;
      } catch (err) {
        if (signal.aborted) throw new SimAbortError();
        failure = messageOf(err);
      }
      this.lastError = `cloud-init: GET ${url}: ${failure} (try ${attempt} of ${CLOUD_INIT_TRIES})`;
      this.console.write(this.lastError);
      this.changed();
      if (attempt >= CLOUD_INIT_TRIES) return optional ? '' : undefined;
      await simDelay(this.speed, 1, signal, MIN_RETRY_MS);
    }
  }

  /** Firmware and boot delays: the ones slow-boot multiplies. */
  private bootDelay(seconds: number, signal: AbortSignal): Promise<void> {
    return simDelay(this.speed, seconds * this.faults.bootFactor(), signal);
  }

  // ---- the NIC --------------------------------------------------------------------------------------------

  /** `{server}/boot/v1/ca.crt`, if its SHA-256 (DER) matches the pin; retried like PXE while it cannot be had. */
  private async fetchPinnedCa(params: AgentParams, signal: AbortSignal): Promise<string | undefined> {
    const url = `${this.serverUrl}/boot/v1/ca.crt`;
    for (;;) {
      signal.throwIfAborted();
      try {
        const res = await this.request(url, { signal });
        const pem = await res.text();
        const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
        const got = createHash('sha256').update(der).digest('hex');
        if (res.status === 200 && (!params.caSha256 || got === params.caSha256)) return pem;
        this.lastError = `initramfs: ${url}: the CA does not match metalplane.ca_sha256 (HTTP ${res.status}); refusing to trust it`;
        this.console.write(this.lastError);
        this.changed();
        return undefined;
      } catch (err) {
        if (err instanceof SimAbortError || signal.aborted) throw err;
        this.lastError = `initramfs: GET ${url}: ${messageOf(err)}`;
        this.console.write(`${this.lastError}; retrying`);
        this.changed();
        await simDelay(this.speed, 2, signal, MIN_RETRY_MS);
      }
    }
  }

  /** An HTTP request from the machine's NIC; throws MachineNetworkError without an answer, SimAbortError on abort. */
  async request(url: string, init: MachineRequestInit): Promise<Response> {
    if (this.faults.has('nic-down')) throw new MachineNetworkError('network is down (nic-down)');
    init.signal.throwIfAborted();
    const timeout = AbortSignal.timeout(init.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    const signal = AbortSignal.any([init.signal, this.nicAbort.signal, timeout]);
    try {
      if (url.startsWith('https:') && this.trustedCa) return await httpsRequest(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, body: init.body, ca: this.trustedCa, agent: this.tlsAgent(this.trustedCa), signal });
      return await fetch(url, { method: init.method ?? 'GET', headers: init.headers, body: init.body, signal, redirect: 'follow' });
    } catch (err) {
      if (init.signal.aborted) throw new SimAbortError();
      if (timeout.aborted) throw new MachineNetworkError(`no answer within ${init.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS} ms`, { cause: err });
      if (err instanceof MachineNetworkError) throw err;
      const reason = signal.reason;
      if (reason instanceof MachineNetworkError) throw reason;
      throw new MachineNetworkError(describeFetchFailure(err), { cause: err });
    }
  }

  private tlsAgent(ca: string): https.Agent {
    if (!this.httpsAgent || this.httpsAgentCa !== ca) {
      this.httpsAgent?.destroy();
      this.httpsAgent = new https.Agent({ keepAlive: true, ca, secureContext: secureContextFor(ca) });
      this.httpsAgentCa = ca;
    }
    return this.httpsAgent;
  }

  // ---- what the agent sees --------------------------------------------------------------------------------

  private agentHost(): AgentHost {
    return {
      id: this.id,
      speed: this.speed,
      faults: this.faults,
      logger: this.logger,
      console: (text) => this.console.write(`metalplane-agent: ${text}`),
      inventory: () => this.inventory(),
      disks: () => this.spec.disks,
      request: (url, init) => this.request(url, init),
      wipeDisk: (device) => {
        if (device === this.spec.disks[0]?.device) this.disk = {};
        this.changed();
      },
      installImage: (os, url) => {
        this.disk = { installedImage: os, imageUrl: url };
        this.changed();
      },
      hasInstalledImage: () => this.disk.installedImage !== undefined,
      writeDatasource: (seedfrom, instanceId) => {
        this.disk = { ...this.disk, datasource: { seedfrom, instanceId } };
        this.changed();
      },
      reboot: () => {
        // A warm reset from the OS: the BMC's boot override (set to the disk by the controllers) decides.
        if (this.power === 'on') this.startBoot('agent reboot');
      },
      agentState: (state, action) => {
        if (this.agent === undefined) return;
        this.agent = { ...this.agent, state };
        if (action !== undefined) this.agent.action = action;
        else delete this.agent.action;
        this.changed();
      },
    };
  }

  private inventory(): AgentInventory {
    return {
      cpus: this.spec.cpus,
      memoryGiB: this.spec.memoryGiB,
      macs: this.spec.nics.map((n) => n.mac),
      disks: this.spec.disks.map((d) => ({ device: d.device, sizeGB: d.sizeGB })),
    };
  }

  private setPhase(phase: SimPhase): void {
    this.phase = phase;
    this.changed();
  }

  private changed(): void {
    if (this.listeners.size === 0) return;
    const s = this.snapshot();
    for (const l of [...this.listeners]) l(s);
  }
}

/**
 * Reads an iPXE script the way the sim's firmware needs it: `#!ipxe`, then `kernel … metalplane.*=…`
 * (+ `initrd`, `boot`) for the agent, `exit` for the local disk, or `chain <url>`. `echo` lines are kept;
 * other commands (dhcp, set, sleep…) are skipped.
 */
export function parseIpxeScript(text: string): IpxeScript {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#!') && !l.startsWith('#') && !l.startsWith(':'));
  if (!/^#!ipxe\b/.test(text.trimStart())) return { kind: 'invalid', reason: 'not an iPXE script (no #!ipxe line)' };
  const echo: string[] = [];
  let kernel: string[] | undefined;
  for (const line of lines) {
    const [command, ...args] = line.split(/\s+/);
    switch (command) {
      case 'echo':
        echo.push(args.join(' '));
        break;
      case 'kernel':
        kernel = args.filter((a) => !a.startsWith('--'));
        break;
      case 'exit':
        return { kind: 'exit', echo };
      case 'chain': {
        const url = args.find((a) => !a.startsWith('--'));
        if (url === undefined) return { kind: 'invalid', reason: 'chain without a URL' };
        return { kind: 'chain', url, echo };
      }
      case 'boot':
        return agentScript(kernel, echo);
      default:
        break;
    }
  }
  if (kernel !== undefined) return agentScript(kernel, echo);
  return { kind: 'invalid', reason: 'the script neither boots a kernel, exits nor chains' };
}

function agentScript(kernel: string[] | undefined, echo: string[]): IpxeScript {
  if (kernel === undefined || kernel.length === 0) return { kind: 'invalid', reason: 'boot without a kernel' };
  const args = new Map<string, string>();
  for (const a of kernel.slice(1)) {
    const eq = a.indexOf('=');
    if (eq > 0) args.set(a.slice(0, eq), a.slice(eq + 1));
  }
  const missing = ['metalplane.url', 'metalplane.hardware', 'metalplane.boot', 'metalplane.token'].filter((k) => !args.get(k));
  if (missing.length > 0) return { kind: 'invalid', reason: `the kernel command line lacks ${missing.join(', ')}` };
  return {
    kind: 'agent',
    kernel: kernel[0]!,
    agent: {
      url: args.get('metalplane.url')!,
      hardware: args.get('metalplane.hardware')!,
      bootId: args.get('metalplane.boot')!,
      token: args.get('metalplane.token')!,
      ...(args.get('metalplane.ca_sha256') ? { caSha256: args.get('metalplane.ca_sha256')! } : {}),
    },
    echo,
  };
}

/** NoCloud meta-data is YAML (or JSON): `instance-id`, `local-hostname`, …; only string values are kept. */
function parseMetaData(text: string): Record<string, string> {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch {
    return {};
  }
  const out: Record<string, string> = {};
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
    for (const [k, v] of Object.entries(doc)) if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  }
  return out;
}

function describeFetchFailure(err: unknown): string {
  // fetch says only "fetch failed"; the reason (ECONNREFUSED, …) is in the cause chain.
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return `${code}${(e as { message?: unknown }).message ? ` (${String((e as { message?: unknown }).message)})` : ''}`;
  }
  return messageOf(err);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * One TLS context per trusted CA for all the simulated machines of this process. Each machine still makes its own
 * connections and handshakes, as real ones do; what they share is the parsed CA, which Node otherwise builds anew
 * for every connection (about 1.5 % of the server's CPU while 1000 machines provision, sim in-process).
 */
const secureContexts = new Map<string, tls.SecureContext>();
function secureContextFor(ca: string): tls.SecureContext {
  let c = secureContexts.get(ca);
  if (!c) {
    if (secureContexts.size >= 8) secureContexts.clear();
    secureContexts.set(ca, (c = tls.createSecureContext({ ca })));
  }
  return c;
}

/** A request over node:https trusting only `ca`, answered as a fetch Response. */
function httpsRequest(url: string, o: { method: string; headers: Record<string, string>; body?: string; ca: string; agent: https.Agent; signal: AbortSignal }): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: o.method, headers: { ...o.headers, ...(o.body !== undefined ? { 'content-length': String(Buffer.byteLength(o.body)) } : {}) }, agent: o.agent, signal: o.signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        const status = res.statusCode ?? 0;
        const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
        resolve(new Response(body, { status, headers }));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}
