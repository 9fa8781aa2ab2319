// The simulated datacenter: N machines racked across metros, facilities and racks, behind one Redfish BMC
// emulator on loopback, enrolled the way an operator enrolls real machines — a BMC credentials Secret and a
// Hardware object per machine, through the API client. After that the controllers find them like any other
// hardware: the sim never tells metalplane anything except through the BMC, PXE, agent and metadata protocols.
//
// The layout is a pure function of the machine index (a fixed, interleaved cycle of 48 placements), so names
// and MACs are the same for every N and across restarts. BMC passwords are random (nobody can compute them from
// a machine's name); the Secrets hold them, and a restart on the same store reads them back, so enrolling again
// is a no-op except for the BMC address (the in-process emulator's port is picked anew on each start; `metalplane
// sim` serves it on a fixed port, so there nothing moves).
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimApiClient } from './kube-client.js';
import { childLogger, silentLogger, type Logger } from '../runtime/logger.js';
import type { KindDeclaration, KubeObject, StoredObject } from '../kinds/types.js';
import type { SimSpeed } from './clock.js';
import { Chaos, FaultSet, isFaultType, FAULT_TYPES, type ActiveFault, type ChaosOptions, type ChaosStatus, type FaultSpec, type FaultType } from './faults.js';
import { SimMachine, type SimDisk, type SimMachineSpec } from './machine.js';
import { RedfishEmulator } from './redfish-emulator.js';
import { SimSwitchFabric, type SimCable } from './switch.js';

export const SIM_NAMESPACE = 'metalplane-system';
export const SIM_LABEL = 'metalplane.dev/sim';
const MACHINES_PER_RACK = 16;
const ENROLL_BATCH = 100;

export interface SimDatacenterOptions {
  machines: number;
  speed: SimSpeed;
  /** The plain-HTTP URL of metalplane that machines reach (PXE, agent, metadata); read at start(). */
  serverUrl: string | (() => string);
  /** Enrolls the machines: the in-process registry, or the server's kube API over HTTPS (kube-client.ts). */
  client: SimApiClient;
  logger?: Logger;
  /** Where the BMC emulator listens; default 127.0.0.1. */
  host?: string;
  /** The BMC emulator's port; default 0 (any free one). */
  bmcPort?: number;
  /**
   * The emulator is served by someone else's HTTP server (the `metalplane sim` process's one port, through
   * `redfishHandler`) at this base URL, read at start(); then it does not listen on its own.
   */
  bmcUrl?: string | (() => string);
}

/** Where one machine is racked. */
export interface MachinePlacement {
  index: number;
  name: string;
  metro: string;
  facility: string;
  rack: string;
  slot: number;
  plan: string;
}

export interface EnrollmentSummary {
  hardwareCreated: number;
  hardwareUpdated: number;
  secretsCreated: number;
  secretsUpdated: number;
  ms: number;
}

/** A fault or chaos request that names something that does not exist or makes no sense. */
export class SimRequestError extends Error {
  constructor(
    readonly status: 400 | 404,
    message: string,
  ) {
    super(message);
    this.name = 'SimRequestError';
  }
}

// ---- layout ------------------------------------------------------------------------------------------------

interface PlacementGroup {
  metro: string;
  facility: string;
  plan: string;
  weight: number;
}

/** One cycle of 48: most capacity in `da` and `c3.small.x86`, 7 facilities in 6 metros, 2+ plans each. */
const GROUPS: PlacementGroup[] = [
  { metro: 'da', facility: 'da11', plan: 'c3.small.x86', weight: 14 },
  { metro: 'da', facility: 'da11', plan: 'm3.small.x86', weight: 4 },
  { metro: 'da', facility: 'da11', plan: 'c3.medium.x86', weight: 3 },
  { metro: 'da', facility: 'da6', plan: 'c3.small.x86', weight: 4 },
  { metro: 'da', facility: 'da6', plan: 'm3.large.x86', weight: 2 },
  { metro: 'ny', facility: 'ny5', plan: 'c3.small.x86', weight: 4 },
  { metro: 'ny', facility: 'ny5', plan: 'c3.medium.x86', weight: 2 },
  { metro: 'sv', facility: 'sv15', plan: 'c3.small.x86', weight: 3 },
  { metro: 'sv', facility: 'sv15', plan: 'm3.small.x86', weight: 2 },
  { metro: 'am', facility: 'am6', plan: 'c3.small.x86', weight: 3 },
  { metro: 'am', facility: 'am6', plan: 'n3.xlarge.x86', weight: 1 },
  { metro: 'ch', facility: 'ch3', plan: 'c3.small.x86', weight: 2 },
  { metro: 'ch', facility: 'ch3', plan: 'm3.small.x86', weight: 1 },
  { metro: 'fr', facility: 'fr2', plan: 'c3.small.x86', weight: 2 },
  { metro: 'fr', facility: 'fr2', plan: 's3.xlarge.x86', weight: 1 },
];

/** The cycle, interleaved by smooth weighted round robin so that any prefix is spread across metros too. */
const CYCLE: readonly PlacementGroup[] = (() => {
  const total = GROUPS.reduce((n, g) => n + g.weight, 0);
  const current = GROUPS.map(() => 0);
  const out: PlacementGroup[] = [];
  for (let i = 0; i < total; i++) {
    let best = 0;
    for (let g = 0; g < GROUPS.length; g++) {
      current[g]! += GROUPS[g]!.weight;
      if (current[g]! > current[best]!) best = g;
    }
    current[best]! -= total;
    out.push(GROUPS[best]!);
  }
  return out;
})();

interface PlanHardware {
  cpus: number;
  sockets: number;
  memoryGiB: number;
  nics: number;
  disks: SimDisk[];
  manufacturer: string;
  model: string;
}

/** The simulated hardware of each plan (close to src/kinds/catalog-seed.ts; 1–2 disks to keep wipes short). */
const PLAN_HARDWARE: Record<string, PlanHardware> = {
  'c3.small.x86': {
    cpus: 8, sockets: 1, memoryGiB: 32, nics: 2, manufacturer: 'Supermicro', model: 'SYS-5019C-MR',
    disks: [{ device: '/dev/sda', sizeGB: 480, type: 'SSD' }, { device: '/dev/sdb', sizeGB: 480, type: 'SSD' }],
  },
  'c3.medium.x86': {
    cpus: 24, sockets: 1, memoryGiB: 64, nics: 2, manufacturer: 'Dell Inc.', model: 'PowerEdge R6515',
    disks: [{ device: '/dev/sda', sizeGB: 240, type: 'SSD' }, { device: '/dev/sdb', sizeGB: 480, type: 'SSD' }],
  },
  'm3.small.x86': {
    cpus: 8, sockets: 1, memoryGiB: 64, nics: 2, manufacturer: 'Supermicro', model: 'SYS-510T-MR',
    disks: [{ device: '/dev/nvme0n1', sizeGB: 480, type: 'NVME' }],
  },
  'm3.large.x86': {
    cpus: 32, sockets: 1, memoryGiB: 256, nics: 2, manufacturer: 'Dell Inc.', model: 'PowerEdge R6525',
    disks: [{ device: '/dev/sda', sizeGB: 240, type: 'SSD' }, { device: '/dev/nvme0n1', sizeGB: 3840, type: 'NVME' }],
  },
  's3.xlarge.x86': {
    cpus: 12, sockets: 1, memoryGiB: 192, nics: 2, manufacturer: 'Supermicro', model: 'SSG-6029P-E1CR12L',
    disks: [{ device: '/dev/sda', sizeGB: 960, type: 'SSD' }, { device: '/dev/sdb', sizeGB: 8000, type: 'HDD' }],
  },
  'n3.xlarge.x86': {
    cpus: 64, sockets: 2, memoryGiB: 512, nics: 4, manufacturer: 'Dell Inc.', model: 'PowerEdge R750',
    disks: [{ device: '/dev/sda', sizeGB: 240, type: 'SSD' }, { device: '/dev/nvme0n1', sizeGB: 3840, type: 'NVME' }],
  },
};

/** Placements of machines 0…n-1; machine i is placed the same way whatever n is. */
export function simLayout(n: number): MachinePlacement[] {
  const perFacility = new Map<string, number>();
  const out: MachinePlacement[] = [];
  for (let index = 0; index < n; index++) {
    const g = CYCLE[index % CYCLE.length]!;
    const k = perFacility.get(g.facility) ?? 0;
    perFacility.set(g.facility, k + 1);
    const rack = `r${pad2(Math.floor(k / MACHINES_PER_RACK) + 1)}`;
    const slot = (k % MACHINES_PER_RACK) + 1;
    out.push({ index, name: `${g.facility}-${rack}-s${pad2(slot)}`, metro: g.metro, facility: g.facility, rack, slot, plan: g.plan });
  }
  return out;
}

/** A new BMC password: 120 random bits, 20 URL-safe characters. */
export function newBmcPassword(): string {
  return randomBytes(15).toString('base64url');
}

/** The machine at a placement: MACs `02:00:<nic>:<index>`, serial and UUID derived from it; the BMC password given (or new). */
export function simMachineSpec(p: MachinePlacement, password: string = newBmcPassword()): SimMachineSpec {
  const hw = PLAN_HARDWARE[p.plan];
  if (hw === undefined) throw new Error(`no simulated hardware for plan ${p.plan}; known: ${Object.keys(PLAN_HARDWARE).join(', ')}`);
  const n = p.index + 1;
  const nics = Array.from({ length: hw.nics }, (_, j) => ({
    name: `eth${j}`,
    mac: ['02', '00', j, n >> 16, n >> 8, n].map((b) => (typeof b === 'string' ? b : hex2(b & 0xff))).join(':'),
  }));
  return {
    id: p.name,
    username: 'admin',
    password,
    manufacturer: hw.manufacturer,
    model: hw.model,
    serialNumber: `SIM${String(n).padStart(7, '0')}`,
    uuid: `4d455441-4c50-4c41-8e00-${n.toString(16).padStart(12, '0')}`,
    cpus: hw.cpus,
    sockets: hw.sockets,
    memoryGiB: hw.memoryGiB,
    nics,
    disks: hw.disks.map((d) => ({ ...d })),
  };
}

// ---- the datacenter -----------------------------------------------------------------------------------------

export class SimDatacenter {
  private readonly opts: SimDatacenterOptions;
  private readonly logger: Logger;
  private readonly byId = new Map<string, SimMachine>();
  private readonly placements = new Map<string, MachinePlacement>();
  private readonly emulator: RedfishEmulator;
  private readonly chaos: Chaos;
  private url: string | undefined;
  /** The racks' switches: the network controller's switch driver when the sim runs. */
  readonly fabric = new SimSwitchFabric(() => this.cabling());

  constructor(opts: SimDatacenterOptions) {
    if (!Number.isInteger(opts.machines) || opts.machines < 0) throw new Error(`machines must be a non-negative integer, got ${opts.machines}`);
    if (opts.speed !== 'max' && !(typeof opts.speed === 'number' && opts.speed > 0)) throw new Error(`speed must be a positive number or "max", got ${String(opts.speed)}`);
    this.opts = opts;
    this.logger = childLogger(opts.logger ?? silentLogger, { component: 'sim' });
    this.emulator = new RedfishEmulator({ systems: this.byId });
    this.chaos = new Chaos(
      () => [...this.byId.values()],
      (target, fault) => this.logger.info({ machine: target.id, fault: fault.type, until: fault.until }, 'sim chaos: fault injected'),
    );
  }

  /** Serves the BMCs' Redfish requests (`/redfish/...`) on a server of the caller's (with `bmcUrl`). */
  get redfishHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return this.emulator.handler;
  }

  /** The BMC emulator's base URL (after start). */
  get bmcUrl(): string {
    if (this.url === undefined) throw new Error('the simulated datacenter is not started');
    return this.url;
  }

  /** Starts the BMC emulator, builds the machines (powered off) and enrolls them. */
  async start(): Promise<EnrollmentSummary> {
    const given = typeof this.opts.bmcUrl === 'function' ? this.opts.bmcUrl() : this.opts.bmcUrl;
    const url = given !== undefined ? given.replace(/\/+$/, '') : (await this.emulator.listen(this.opts.bmcPort ?? 0, this.opts.host ?? '127.0.0.1')).url;
    this.url = url;
    // The BMCs keep the passwords their Secrets hold (a restart on the same store); a machine without a usable
    // Secret gets a new password, and enrollment writes it into the Secret: both sides always agree.
    const stored = await storedPasswords(this.opts.client);
    for (const p of simLayout(this.opts.machines)) {
      const machine = new SimMachine({
        spec: simMachineSpec(p, stored.get(secretName(p.name))),
        serverUrl: typeof this.opts.serverUrl === 'function' ? this.opts.serverUrl() : this.opts.serverUrl,
        speed: this.opts.speed,
        logger: this.logger,
        faults: new FaultSet(),
      });
      this.byId.set(p.name, machine);
      this.placements.set(p.name, p);
    }
    const summary = await this.enroll();
    this.logger.info({ machines: this.byId.size, bmc: url, speed: this.opts.speed, ...summary }, 'sim: datacenter started');
    return summary;
  }

  machine(id: string): SimMachine | undefined {
    return this.byId.get(id);
  }

  machines(): SimMachine[] {
    return [...this.byId.values()];
  }

  placement(id: string): MachinePlacement | undefined {
    return this.placements.get(id);
  }

  /** Every NIC goes to its rack's switch (`<facility>-<rack>-tor`), four ports per slot. */
  private cabling(): SimCable[] {
    const out: SimCable[] = [];
    for (const m of this.byId.values()) {
      const p = this.placements.get(m.id);
      if (!p) continue;
      m.spec.nics.forEach((n, j) => out.push({ machine: m.id, nic: n.name, mac: n.mac, switch: `${p.facility}-${p.rack}-tor`, port: `Ethernet${(p.slot - 1) * 4 + j + 1}` }));
    }
    return out;
  }

  injectFault(machineId: string, fault: FaultSpec): ActiveFault {
    const m = this.mustGet(machineId);
    if (!isFaultType(fault.type)) throw new SimRequestError(400, unknownFault(fault.type));
    try {
      const active = m.faults.add(fault);
      this.logger.info({ machine: machineId, fault: fault.type, until: active.until }, 'sim: fault injected');
      return active;
    } catch (err) {
      throw new SimRequestError(400, err instanceof Error ? err.message : String(err));
    }
  }

  /** Clears one fault type (or all) of a machine; answers how many were cleared. */
  clearFaults(machineId: string, type?: FaultType): number {
    const m = this.mustGet(machineId);
    if (type !== undefined && !isFaultType(type)) throw new SimRequestError(400, unknownFault(type));
    const n = m.faults.clear(type);
    if (n > 0) this.logger.info({ machine: machineId, fault: type ?? 'all', cleared: n }, 'sim: faults cleared');
    return n;
  }

  listFaults(): Array<ActiveFault & { machine: string }> {
    const out: Array<ActiveFault & { machine: string }> = [];
    for (const m of this.byId.values()) {
      if (m.faults.size === 0) continue;
      for (const f of m.faults.list()) out.push({ machine: m.id, ...f });
    }
    return out;
  }

  startChaos(opts: ChaosOptions): ChaosStatus {
    try {
      const status = this.chaos.start(opts);
      this.logger.info({ rate: status.rate, types: status.types, durationMs: status.durationMs, seed: status.seed }, 'sim chaos: started');
      return status;
    } catch (err) {
      throw new SimRequestError(400, err instanceof Error ? err.message : String(err));
    }
  }

  stopChaos(): ChaosStatus {
    const s = this.chaos.stop();
    this.logger.info({ injected: s.injected }, 'sim chaos: stopped');
    return s;
  }

  chaosStatus(): ChaosStatus {
    return this.chaos.status();
  }

  /** Stops chaos, powers every machine off (aborting boots and agents) and closes the BMC emulator. */
  async stop(): Promise<void> {
    this.chaos.stop();
    for (const m of this.byId.values()) m.stop();
    await this.emulator.close();
  }

  private mustGet(id: string): SimMachine {
    const m = this.byId.get(id);
    if (m === undefined) {
      const some = [...this.byId.keys()].slice(0, 3).join(', ');
      throw new SimRequestError(404, `no simulated machine "${id}"${some ? `; machines are named like ${some}` : ''}`);
    }
    return m;
  }

  // ---- enrollment --------------------------------------------------------------------------------------------

  /** What an operator does for each machine: a BMC Secret and a Hardware object. Idempotent. */
  private async enroll(): Promise<EnrollmentSummary> {
    const started = Date.now();
    const { client } = this.opts;
    const namespaceKind = client.kind('', 'Namespace');
    const secretKind = client.kind('', 'Secret');
    const hardwareKind = client.kind('metalplane.dev', 'Hardware');
    if ((await client.get(namespaceKind, undefined, SIM_NAMESPACE)) === undefined) {
      await ignoreAlreadyExists(client.create(namespaceKind, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: SIM_NAMESPACE } }));
    }
    const [secrets, hardware] = await Promise.all([
      listAll(client, secretKind, SIM_NAMESPACE),
      listAll(client, hardwareKind, undefined),
    ]);
    const summary: EnrollmentSummary = { hardwareCreated: 0, hardwareUpdated: 0, secretsCreated: 0, secretsUpdated: 0, ms: 0 };
    const machines = [...this.byId.values()];

    // Secrets first, so a controller that sees the Hardware finds its credentials.
    await inBatches(machines, async (m) => {
      const want = this.secretFor(m);
      const have = secrets.get(want.metadata.name!);
      if (have === undefined) {
        if (await ignoreAlreadyExists(client.create(secretKind, want))) summary.secretsCreated++;
      } else if (!sameData(have['data'], want['data'])) {
        await client.mergePatch(secretKind, SIM_NAMESPACE, want.metadata.name!, { data: want['data'] });
        summary.secretsUpdated++;
      }
    });
    await inBatches(machines, async (m) => {
      const want = this.hardwareFor(m);
      const have = hardware.get(m.id);
      if (have === undefined) {
        if (await ignoreAlreadyExists(client.create(hardwareKind, want))) summary.hardwareCreated++;
        return;
      }
      // The emulator listens on a new port each start: move the BMC address like an operator re-IPing a BMC.
      const bmc = (want['spec'] as { bmc: Record<string, unknown> }).bmc;
      const haveBmc = (have['spec'] as { bmc?: Record<string, unknown> } | undefined)?.bmc ?? {};
      if (haveBmc['address'] !== bmc['address'] || haveBmc['systemId'] !== bmc['systemId']) {
        await client.mergePatch(hardwareKind, undefined, m.id, { spec: { bmc: { address: bmc['address'], systemId: bmc['systemId'] } } });
        summary.hardwareUpdated++;
      }
    });
    summary.ms = Date.now() - started;
    return summary;
  }

  private secretFor(m: SimMachine): KubeObject {
    const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secretName(m.id), namespace: SIM_NAMESPACE, labels: { [SIM_LABEL]: 'true' } },
      type: 'Opaque',
      data: { username: b64(m.username), password: b64(m.password) },
    };
  }

  private hardwareFor(m: SimMachine): KubeObject {
    const p = this.placements.get(m.id)!;
    return {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Hardware',
      metadata: { name: m.id, labels: { [SIM_LABEL]: 'true' } },
      spec: {
        metro: p.metro,
        facility: p.facility,
        rack: p.rack,
        slot: p.slot,
        plan: p.plan,
        bmc: {
          driver: 'redfish',
          address: this.bmcUrl,
          systemId: `/redfish/v1/Systems/${m.id}`,
          credentialsSecret: { name: secretName(m.id), namespace: SIM_NAMESPACE },
        },
        nics: m.spec.nics.map((n, i) => (i === 0 ? { name: n.name, mac: n.mac, pxe: true } : { name: n.name, mac: n.mac })),
        disks: m.spec.disks.map((d) => ({ device: d.device, sizeGB: d.sizeGB, type: d.type })),
      },
    };
  }
}

function secretName(machine: string): string {
  return `bmc-${machine}`;
}

/** The passwords in the sim's BMC Secrets (user `admin`), by Secret name; unusable ones are left out. */
async function storedPasswords(client: SimApiClient): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if ((await client.get(client.kind('', 'Namespace'), undefined, SIM_NAMESPACE)) === undefined) return out;
  for (const [name, secret] of await listAll(client, client.kind('', 'Secret'), SIM_NAMESPACE)) {
    const data = (secret['data'] ?? {}) as Record<string, unknown>;
    if (typeof data['password'] !== 'string' || typeof data['username'] !== 'string') continue;
    const username = Buffer.from(data['username'], 'base64').toString('utf8');
    const password = Buffer.from(data['password'], 'base64').toString('utf8');
    // Before passwords were random they were derived from the machine name: such a one is re-issued.
    const legacy = createHash('sha256').update(`metalplane-sim-bmc/${name.slice('bmc-'.length)}`).digest('base64url').slice(0, 20);
    if (username === 'admin' && password.length >= 16 && password !== legacy) out.set(name, password);
  }
  return out;
}

async function listAll(client: SimApiClient, kind: KindDeclaration, namespace: string | undefined): Promise<Map<string, StoredObject>> {
  const out = new Map<string, StoredObject>();
  let cont: string | undefined;
  do {
    const page = await client.list(kind, { ...(namespace ? { namespace } : {}), limit: 500, ...(cont ? { continue: cont } : {}) });
    for (const o of page.items) out.set(o.metadata.name, o);
    cont = page.continue || undefined;
  } while (cont !== undefined);
  return out;
}

async function inBatches<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += ENROLL_BATCH) await Promise.all(items.slice(i, i + ENROLL_BATCH).map(fn));
}

/** true if created, false if someone else created it first (409 AlreadyExists). */
async function ignoreAlreadyExists(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (err) {
    if (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 409 && (err as { reason?: unknown }).reason === 'AlreadyExists') return false;
    throw err;
  }
}

function sameData(a: unknown, b: unknown): boolean {
  const x = (a ?? {}) as Record<string, unknown>;
  const y = (b ?? {}) as Record<string, unknown>;
  return Object.keys(y).every((k) => x[k] === y[k]);
}

function unknownFault(type: unknown): string {
  return `unknown fault type ${JSON.stringify(type)}; valid: ${FAULT_TYPES.join(', ')}`;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
