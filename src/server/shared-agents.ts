// Agent liveness when replicas share a store: a machine's agent may poll any replica, while the controllers
// run on the leader. Each replica publishes the agents that call it as heartbeats in the store
// (`/metalplane/agents/<hardware>`, at most one write per machine per third of the alive window), and every
// replica follows those keys with a watch. A heartbeat counts from when *we* saw it arrive (our clock), as the
// leader lease does, so clock skew between replicas does not matter.
import { systemClock, type Clock } from '../lib/clock.js';
import { isKeyExists, isKeyNotFound } from '../store/errors.js';
import type { Store, WatchHandle } from '../store/types.js';
import type { AgentPresence } from '../controllers/provisioning-context.js';
import type { AgentHub } from '../provisioning/agent-hub.js';

export const AGENT_HEARTBEAT_PREFIX = '/metalplane/agents/';
const DEFAULT_ALIVE_MS = 45_000;

interface Seen {
  bootId: string;
  at: number;
}

export class SharedAgentPresence implements AgentPresence {
  private readonly seen = new Map<string, Seen>();
  private readonly published = new Map<string, Seen>();
  /** Boots forgotten here (a heartbeat of one published before the other replica heard of it counts for nothing). */
  private readonly forgottenBoots = new Map<string, string>();
  private watch: WatchHandle | undefined;
  private local: AgentHub | undefined;
  private readonly clock: Clock;
  private readonly aliveMs: number;

  constructor(
    private readonly store: Store,
    opts: { clock?: Clock; aliveMs?: number; onError?: (err: Error) => void } = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.aliveMs = opts.aliveMs ?? DEFAULT_ALIVE_MS;
    this.onError = opts.onError ?? (() => undefined);
  }

  private readonly onError: (err: Error) => void;

  /** The replica's own hub (its agents are known first-hand). */
  attach(local: AgentHub): void {
    this.local = local;
  }

  async start(): Promise<void> {
    const page = await this.store.list(AGENT_HEARTBEAT_PREFIX);
    for (const kv of page.items) this.note(kv.key, kv.value);
    this.watch = await this.store.watch(AGENT_HEARTBEAT_PREFIX, {
      fromRevision: page.revision,
      onEvents: (events) => {
        for (const e of events) {
          const hardware = e.kv.key.slice(AGENT_HEARTBEAT_PREFIX.length);
          if (e.type === 'delete') {
            // The leader forgot this agent (its machine was reset): so does this replica, whose hub may be the
            // one the old boot's last long poll still touches.
            this.seen.delete(hardware);
            const bootId = bootIdOf(e.kv.value);
            if (bootId !== undefined) this.local?.forget(hardware, bootId);
          } else this.note(e.kv.key, e.kv.value);
        }
      },
    });
  }

  stop(): void {
    this.watch?.cancel();
    this.watch = undefined;
  }

  private note(key: string, value: string): void {
    const bootId = bootIdOf(value);
    const hardware = key.slice(AGENT_HEARTBEAT_PREFIX.length);
    if (bootId !== undefined && this.forgottenBoots.get(hardware) === bootId) return;
    if (bootId !== undefined) this.seen.set(key.slice(AGENT_HEARTBEAT_PREFIX.length), { bootId, at: this.clock.now() });
  }

  /** Called by the local hub on every agent call: publishes a heartbeat when one is due. */
  readonly touch = (hardware: string, bootId: string): void => {
    const now = this.clock.now();
    const last = this.published.get(hardware);
    if (last && last.bootId === bootId && now - last.at < this.aliveMs / 3) return;
    this.published.set(hardware, { bootId, at: now });
    void this.write(AGENT_HEARTBEAT_PREFIX + hardware, JSON.stringify({ bootId })).catch((err: Error) => {
      this.published.delete(hardware);
      this.onError(err);
    });
  };

  private async write(key: string, value: string): Promise<void> {
    try {
      await this.store.update(key, value);
    } catch (e) {
      if (!isKeyNotFound(e)) throw e;
      try {
        await this.store.create(key, value);
      } catch (e2) {
        if (!isKeyExists(e2)) throw e2;
        await this.store.update(key, value);
      }
    }
  }

  isAlive(hardware: string, bootId?: string): boolean {
    if (this.local?.isAlive(hardware, bootId)) return true;
    const s = this.seen.get(hardware);
    if (!s || (bootId && s.bootId !== bootId)) return false;
    return this.clock.now() - s.at <= this.aliveMs;
  }

  forget(hardware: string): void {
    const bootId = this.local?.agent(hardware)?.bootId ?? this.seen.get(hardware)?.bootId;
    if (bootId !== undefined) this.forgottenBoots.set(hardware, bootId);
    this.local?.forget(hardware, bootId);
    this.seen.delete(hardware);
    this.published.delete(hardware);
    void this.store.delete(AGENT_HEARTBEAT_PREFIX + hardware).catch((e: unknown) => {
      if (!isKeyNotFound(e)) this.onError(e as Error);
    });
  }
}

/** The boot of a heartbeat value, or undefined for anything that is not one of ours. */
function bootIdOf(value: string): string | undefined {
  try {
    const { bootId } = JSON.parse(value) as { bootId?: unknown };
    return typeof bootId === 'string' ? bootId : undefined;
  } catch {
    return undefined;
  }
}
