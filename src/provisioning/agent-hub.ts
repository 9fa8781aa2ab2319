// Which agents are up, in memory: the last time each machine's agent called in, and the long polls waiting
// for their next action. Liveness decides the warm pool (a machine whose agent runs needs no power cycle)
// and wakes a waiting agent the moment its workflow has something for it.
export interface AgentSeen {
  bootId: string;
  lastSeen: number;
}

type Waiter = () => void;

export class AgentHub {
  private readonly seen = new Map<string, AgentSeen>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  /**
   * The boot each machine's agent was forgotten at (its machine was reset or powered off): a late call of that
   * boot — a long poll that ends after the reset — must not make it alive again, or a new boot's registration
   * is refused as long as the old one seems alive.
   */
  private readonly forgotten = new Map<string, string>();

  constructor(private readonly opts: { now?: () => number; aliveMs?: number; onTouch?: (hardware: string, bootId: string) => void } = {}) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  touch(hardware: string, bootId: string): void {
    if (this.forgotten.get(hardware) === bootId) return;
    this.forgotten.delete(hardware);
    const s = this.seen.get(hardware);
    if (s && s.bootId === bootId) s.lastSeen = this.now();
    else this.seen.set(hardware, { bootId, lastSeen: this.now() });
    // Replicas of a shared store publish it (src/server/shared-agents.ts): the leader may be another process.
    this.opts.onTouch?.(hardware, bootId);
  }

  /** Forget an agent (its machine was powered off or reset): its boot does not come back alive. */
  forget(hardware: string, bootId = this.seen.get(hardware)?.bootId): void {
    this.seen.delete(hardware);
    if (bootId !== undefined) this.forgotten.set(hardware, bootId);
  }

  /** The agent of `bootId` (any boot if absent) called in recently. */
  isAlive(hardware: string, bootId?: string): boolean {
    const s = this.seen.get(hardware);
    if (!s || (bootId && s.bootId !== bootId)) return false;
    return this.now() - s.lastSeen <= (this.opts.aliveMs ?? 45_000);
  }

  agent(hardware: string): AgentSeen | undefined {
    return this.seen.get(hardware);
  }

  /** Resolves when woken for `hardware`, or after `ms`, or when `signal` aborts. */
  /** `owner`: the request waiting (a server that drains on shutdown finds its long polls by it). */
  wait(hardware: string, ms: number, signal?: AbortSignal, _owner?: object): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(hardware);
      if (!set) this.waiters.set(hardware, (set = new Set()));
      const finish = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        set!.delete(finish);
        if (set!.size === 0 && this.waiters.get(hardware) === set) this.waiters.delete(hardware);
        resolve();
      };
      const timer = setTimeout(finish, ms);
      set.add(finish);
      signal?.addEventListener('abort', finish, { once: true });
    });
  }

  wake(hardware: string): void {
    const set = this.waiters.get(hardware);
    if (!set) return;
    for (const w of [...set]) w();
  }

  waiting(): number {
    let n = 0;
    for (const s of this.waiters.values()) n += s.size;
    return n;
  }
}
