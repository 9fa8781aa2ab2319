// Shutdown without requests running against a closed store. Every route handler runs inside an in-flight
// record (an onRoute wrapper), so shutdown can wait for the handlers that are working, and answer the ones
// that only wait: an agent long poll parked in the hub is answered 204 with a Retry-After hint and never
// resumes, so it neither hands out an action nobody receives nor reads the store after it is closed.
import type { FastifyReply, RouteOptions } from 'fastify';
import { AgentHub } from '../provisioning/agent-hub.js';

interface InFlight {
  req: object;
  reply: FastifyReply;
  /** set while the handler waits in the hub: the machine it waits for */
  waitingFor?: string;
  /** answered by the drain: the handler must not go on */
  answered: boolean;
  /** set by settled(): called once when the handler is done or answered */
  onEnd?: () => void;
}

/** Seconds a drained long poll is told to wait before it polls again (another replica, or this one restarted). */
export const DRAIN_RETRY_AFTER_SECONDS = 1;

export class RequestDrain {
  // Keyed by request and deleted when the handler ends. Not AsyncLocalStorage (it turns on promise hooks for
  // the whole process: GET ~15 % slower), and not a WeakMap: its entries keep every young request alive through
  // scavenges until a full GC, which made plain GETs ~25 % more expensive in garbage collection alone.
  private readonly inFlight = new Map<object, InFlight>();
  private draining = false;

  /** The AgentHub long polls wait in, aware of the drain. */
  readonly hub: AgentHub;

  constructor(hubOptions: ConstructorParameters<typeof AgentHub>[0] = {}) {
    this.hub = new DrainingAgentHub(this, hubOptions);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** An onRoute hook: runs the route's handler inside an in-flight record. */
  readonly onRoute = (route: RouteOptions): void => {
    const handler = route.handler;
    const inFlight = this.inFlight;
    route.handler = function (this: unknown, req, reply) {
      const rec: InFlight = { req, reply, answered: false };
      inFlight.set(req, rec);
      const end = (): void => {
        if (inFlight.get(req) === rec) inFlight.delete(req);
        rec.onEnd?.();
        rec.onEnd = undefined;
      };
      let result: unknown;
      try {
        result = handler.call(this as never, req, reply);
      } catch (e) {
        end();
        throw e;
      }
      if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
        return (result as Promise<unknown>).finally(end);
      }
      end();
      return result;
    } as RouteOptions['handler'];
  };

  /**
   * Starts draining: long polls waiting now are answered, later ones as soon as they would wait. Idempotent.
   */
  start(): void {
    if (this.draining) return;
    this.draining = true;
    for (const rec of [...this.inFlight.values()]) {
      if (rec.waitingFor !== undefined) {
        this.answer(rec);
        // Resolve the hub's wait at once (its timer would hold the process); the handler stays parked.
        this.hub.wake(rec.waitingFor);
      }
    }
  }

  /** Resolves when every handler still working has finished, or after `ms`. */
  async settled(ms: number): Promise<number> {
    if (this.inFlight.size === 0) return 0;
    const pending = [...this.inFlight.values()].map(
      (rec) =>
        new Promise<void>((resolve) => {
          const before = rec.onEnd;
          rec.onEnd = () => {
            before?.();
            resolve();
          };
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(pending), new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
    return this.inFlight.size;
  }

  /** The handlers running now (for tests and logs). */
  get running(): number {
    return this.inFlight.size;
  }

  /** @internal the record of a request's handler */
  recordOf(req: object | undefined): InFlight | undefined {
    return req ? this.inFlight.get(req) : undefined;
  }

  /** @internal answers a parked long poll and stops waiting for its handler */
  answer(rec: InFlight): void {
    if (rec.answered) return;
    rec.answered = true;
    if (!rec.reply.sent) {
      void rec.reply.code(204).header('Retry-After', String(DRAIN_RETRY_AFTER_SECONDS)).header('Connection', 'close').send();
    }
    if (this.inFlight.get(rec.req) === rec) this.inFlight.delete(rec.req);
    rec.onEnd?.();
    rec.onEnd = undefined;
  }
}

/** Never settles: a drained long poll's handler stops here, its answer already sent. */
const parked = (): Promise<void> => new Promise<void>(() => {});

class DrainingAgentHub extends AgentHub {
  constructor(private readonly drain: RequestDrain, opts: ConstructorParameters<typeof AgentHub>[0]) {
    super(opts);
  }

  override wait(hardware: string, ms: number, signal?: AbortSignal, owner?: object): Promise<void> {
    const rec = this.drain.recordOf(owner);
    if (!rec) return super.wait(hardware, ms, signal);
    if (this.drain.isDraining) {
      this.drain.answer(rec);
      return parked();
    }
    rec.waitingFor = hardware;
    return super.wait(hardware, ms, signal).then(() => {
      rec.waitingFor = undefined;
      return rec.answered ? parked() : undefined;
    });
  }
}
