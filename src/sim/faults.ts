// Injectable hardware faults of the simulated datacenter, and "chaos": faults injected at random. A fault
// lives in one machine's FaultSet, is permanent until cleared or expires `durationMs` of real time after it was
// injected (real time, not simulated: an operator clearing it by hand thinks in wall-clock seconds).
//
// What each fault does is up to the parts that check it (machine.ts, agent.ts, the Redfish emulator through
// SimMachine.bmcFault); this file only keeps the set and tells listeners when it changes.

export const FAULT_TYPES = ['bmc-unreachable', 'power-stuck', 'disk-failure', 'agent-hang', 'nic-down', 'slow-boot'] as const;
export type FaultType = (typeof FAULT_TYPES)[number];

export const FAULT_DESCRIPTIONS: Record<FaultType, string> = {
  'bmc-unreachable': 'the BMC drops every Redfish connection without answering',
  'power-stuck': 'power actions are accepted (204) but the power state never changes',
  'disk-failure': 'wiping a disk fails with an I/O error (reason DiskFailure)',
  'agent-hang': 'the provisioning agent stops where it is: no report, no polls, until cleared',
  'nic-down': 'every HTTP request from the machine fails (PXE, agent, OS); the BMC is out of band and still works',
  'slow-boot': 'firmware and boot delays are multiplied by a factor (default 10)',
};

export const DEFAULT_SLOW_BOOT_FACTOR = 10;

export function isFaultType(v: unknown): v is FaultType {
  return typeof v === 'string' && (FAULT_TYPES as readonly string[]).includes(v);
}

/** What to inject. */
export interface FaultSpec {
  type: FaultType;
  /** Real milliseconds until it clears itself; absent = until cleared. */
  durationMs?: number;
  /** slow-boot only: the delay multiplier (default 10). */
  factor?: number;
}

/** A fault in force, as shown to operators. */
export interface ActiveFault {
  type: FaultType;
  /** ISO time it was injected. */
  since: string;
  /** ISO time it clears itself, if it does. */
  until?: string;
  factor?: number;
}

interface Entry {
  fault: ActiveFault;
  timer?: NodeJS.Timeout;
}

/** The faults of one machine. Injecting a type that is already present replaces it. */
export class FaultSet {
  private readonly entries = new Map<FaultType, Entry>();
  private readonly listeners = new Set<(type: FaultType, present: boolean) => void>();

  constructor(private readonly now: () => number = Date.now) {}

  add(spec: FaultSpec): ActiveFault {
    if (!isFaultType(spec.type)) throw new Error(`unknown fault type ${JSON.stringify(spec.type)}; valid: ${FAULT_TYPES.join(', ')}`);
    if (spec.durationMs !== undefined && !(spec.durationMs > 0)) throw new Error(`fault duration must be positive, got ${spec.durationMs} ms`);
    if (spec.factor !== undefined && !(spec.factor >= 1)) throw new Error(`slow-boot factor must be at least 1, got ${spec.factor}`);
    this.remove(spec.type, false);
    const t = this.now();
    const fault: ActiveFault = { type: spec.type, since: new Date(t).toISOString() };
    if (spec.durationMs !== undefined) fault.until = new Date(t + spec.durationMs).toISOString();
    if (spec.type === 'slow-boot') fault.factor = spec.factor ?? DEFAULT_SLOW_BOOT_FACTOR;
    const entry: Entry = { fault };
    if (spec.durationMs !== undefined) {
      // Unref'd: a pending expiry must not keep a finished process (or test) alive.
      entry.timer = setTimeout(() => this.remove(spec.type, true), spec.durationMs);
      entry.timer.unref();
    }
    this.entries.set(spec.type, entry);
    this.emit(spec.type, true);
    return { ...fault };
  }

  /** Clears one type, or all; answers how many were cleared. */
  clear(type?: FaultType): number {
    if (type !== undefined) return this.remove(type, true) ? 1 : 0;
    const types = [...this.entries.keys()];
    for (const t of types) this.remove(t, true);
    return types.length;
  }

  has(type: FaultType): boolean {
    return this.entries.has(type);
  }

  get(type: FaultType): ActiveFault | undefined {
    const e = this.entries.get(type);
    return e === undefined ? undefined : { ...e.fault };
  }

  list(): ActiveFault[] {
    return [...this.entries.values()].map((e) => ({ ...e.fault }));
  }

  get size(): number {
    return this.entries.size;
  }

  /** The multiplier for firmware and boot delays: 1, or the slow-boot factor. */
  bootFactor(): number {
    return this.entries.get('slow-boot')?.fault.factor ?? 1;
  }

  /** Called with (type, present) after every change; answers an unsubscribe function. */
  onChange(listener: (type: FaultType, present: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves at once if `type` is absent, else when it is cleared; rejects when `signal` aborts. */
  waitUntilCleared(type: FaultType, signal?: AbortSignal): Promise<void> {
    if (!this.has(type)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const finish = (err?: Error): void => {
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = (): void => {
        const e = new Error('aborted');
        e.name = 'AbortError';
        finish(e);
      };
      const unsubscribe = this.onChange((t, present) => {
        if (t === type && !present) finish();
      });
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Clears expiry timers and listeners (the machine is going away). */
  dispose(): void {
    for (const e of this.entries.values()) if (e.timer) clearTimeout(e.timer);
    this.entries.clear();
    this.listeners.clear();
  }

  private remove(type: FaultType, notify: boolean): boolean {
    const e = this.entries.get(type);
    if (e === undefined) return false;
    if (e.timer) clearTimeout(e.timer);
    this.entries.delete(type);
    if (notify) this.emit(type, false);
    return true;
  }

  private emit(type: FaultType, present: boolean): void {
    for (const l of [...this.listeners]) l(type, present);
  }
}

// ---- chaos ---------------------------------------------------------------------------------------------------

export interface ChaosOptions {
  /** Faults injected per minute of real time, across all machines. */
  rate: number;
  /** The fault types to pick from; default all. */
  types?: FaultType[];
  /** How long each injected fault lasts (real ms); default 30 000. */
  durationMs?: number;
  /** Seed of the random choices, for a reproducible run; default random. */
  seed?: number;
}

export interface ChaosStatus {
  running: boolean;
  rate?: number;
  types?: FaultType[];
  durationMs?: number;
  seed?: number;
  /** Faults injected since chaos was started. */
  injected: number;
  startedAt?: string;
}

export interface ChaosTarget {
  readonly id: string;
  readonly faults: FaultSet;
}

export const DEFAULT_CHAOS_DURATION_MS = 30_000;

/** Injects a random fault into a random machine every 60 000/rate ms until stopped. */
export class Chaos {
  private timer: NodeJS.Timeout | undefined;
  private opts: Required<ChaosOptions> | undefined;
  private random: () => number = Math.random;
  private injected = 0;
  private startedAt: string | undefined;

  constructor(
    private readonly targets: () => readonly ChaosTarget[],
    private readonly onInject: (target: ChaosTarget, fault: ActiveFault) => void = () => {},
  ) {}

  start(opts: ChaosOptions): ChaosStatus {
    validateChaos(opts);
    this.stop();
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.opts = {
      rate: opts.rate,
      types: opts.types && opts.types.length > 0 ? [...opts.types] : [...FAULT_TYPES],
      durationMs: opts.durationMs ?? DEFAULT_CHAOS_DURATION_MS,
      seed,
    };
    this.random = mulberry32(seed);
    this.injected = 0;
    this.startedAt = new Date().toISOString();
    this.timer = setInterval(() => this.tick(), 60_000 / opts.rate);
    this.timer.unref();
    return this.status();
  }

  stop(): ChaosStatus {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const last = this.status();
    this.opts = undefined;
    this.startedAt = undefined;
    return { ...last, running: false };
  }

  status(): ChaosStatus {
    if (this.opts === undefined) return { running: false, injected: this.injected };
    return { running: true, ...this.opts, types: [...this.opts.types], injected: this.injected, startedAt: this.startedAt };
  }

  /** One injection (what the interval does); exposed so tests need not wait for it. */
  tick(): void {
    const opts = this.opts;
    if (opts === undefined) return;
    const targets = this.targets();
    if (targets.length === 0) return;
    const target = targets[Math.floor(this.random() * targets.length)]!;
    const type = opts.types[Math.floor(this.random() * opts.types.length)]!;
    const fault = target.faults.add({ type, durationMs: opts.durationMs });
    this.injected++;
    this.onInject(target, fault);
  }
}

export function validateChaos(opts: ChaosOptions): void {
  if (typeof opts.rate !== 'number' || !(opts.rate > 0) || opts.rate > 60_000) {
    throw new Error(`chaos rate must be a number of faults per minute above 0 (at most 60000), got ${JSON.stringify(opts.rate)}`);
  }
  for (const t of opts.types ?? []) {
    if (!isFaultType(t)) throw new Error(`unknown fault type ${JSON.stringify(t)}; valid: ${FAULT_TYPES.join(', ')}`);
  }
  if (opts.durationMs !== undefined && !(opts.durationMs > 0)) throw new Error(`chaos fault duration must be positive, got ${opts.durationMs} ms`);
}

/** A small seeded PRNG (mulberry32): good enough to pick machines, and reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
